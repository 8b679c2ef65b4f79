"""What an inference RPC is: where its batch, ids and features live in its messages, and what its model provides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf.message import Message

from artifacts.schema import ArtifactError, Manifest

FLAT = "flat"  # items are messages whose fields are the features: [N, F]
MESSAGE_SEQUENCE = "message_sequence"  # items hold a repeated message of features: [N, T, F]
SCALAR_SEQUENCE = "scalar_sequence"  # items hold a repeated number: [N, T]

Outputs = dict[str, np.ndarray]
BuildResponse = Callable[[list[str], Outputs, Manifest], Any]


@dataclass(frozen=True, kw_only=True)
class RpcSpec:
    """One inference RPC: its request's shape, its model's required outputs, and how its response is built."""

    rpc: str  # method name in the proto's InferenceService
    layout: str  # FLAT, MESSAGE_SEQUENCE or SCALAR_SEQUENCE
    batch_field: str  # repeated field of the request holding the items
    id_field: str  # string field of an item naming it; echoed in its result
    feature_type: type[Message]  # message whose fields are named like the features
    sequence_field: str | None = None  # repeated field inside an item (sequence layouts only)
    required_outputs: tuple[str, ...]  # model outputs the response is built from
    required_thresholds: tuple[str, ...] = ()  # manifest thresholds the response reports
    required_constants: tuple[str, ...] = ()  # manifest constants the response reports
    build_response: BuildResponse  # (ids, outputs, manifest) -> the response message

    def __post_init__(self) -> None:
        if self.layout not in (FLAT, MESSAGE_SEQUENCE, SCALAR_SEQUENCE):
            raise ValueError(f"{self.rpc}: unknown layout {self.layout!r}")
        if (self.sequence_field is None) != (self.layout == FLAT):
            raise ValueError(f"{self.rpc}: a sequence_field is needed by sequence layouts and only by them")

    def check_manifest(self, manifest: Manifest) -> None:
        """Refuse a manifest that does not fit this RPC: shape, feature names, outputs, thresholds."""
        where = f"{manifest.name}/{manifest.version}"
        shape = manifest.input.shape
        rank = 3 if self.layout == MESSAGE_SEQUENCE else 2
        if len(shape) != rank or any(d is None for d in shape[1:]):
            raise ArtifactError(f"{where}: {self.rpc} needs an input of rank {rank} with fixed inner axes, got {shape}")
        if self.layout != SCALAR_SEQUENCE:
            fields = self.feature_type.DESCRIPTOR.fields_by_name
            unknown = [f.name for f in manifest.input.features if f.name not in fields]
            if unknown or len(manifest.input.features) != shape[-1]:
                raise ArtifactError(f"{where}: features {unknown or ''} do not match {self.feature_type.__name__}")
        outputs = {o.name for o in manifest.outputs}
        for name, have, kind in [
            *((n, outputs, "output") for n in self.required_outputs),
            *((n, manifest.thresholds, "threshold") for n in self.required_thresholds),
            *((n, manifest.constants, "constant") for n in self.required_constants),
        ]:
            if name not in have:
                raise ArtifactError(f"{where}: {self.rpc} needs the {kind} {name!r}")

    def path_of(self, item: int, position: int | None, column: int, manifest: Manifest) -> str:
        """The field path of one value, e.g. `links[3].samples[9].rtt_ms`."""
        if self.layout == FLAT:
            return f"{self.batch_field}[{item}].{manifest.input.features[column].name}"
        if self.layout == MESSAGE_SEQUENCE:
            name = manifest.input.features[column].name
            return f"{self.batch_field}[{item}].{self.sequence_field}[{position}].{name}"
        return f"{self.batch_field}[{item}].{self.sequence_field}[{column}]"

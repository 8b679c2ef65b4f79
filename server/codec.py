"""Turn requests into one float32 batch tensor and model outputs into responses, one spec per RPC."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
from google.protobuf.message import Message

from artifacts.schema import ArtifactError, Manifest
from dwcp.inference.v1 import inference_pb2 as pb
from server import validation

FLAT = "flat"  # items are messages whose fields are the features: [N, F]
MESSAGE_SEQUENCE = "message_sequence"  # items hold a repeated message of features: [N, T, F]
SCALAR_SEQUENCE = "scalar_sequence"  # items hold a repeated number: [N, T]

Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class RpcSpec:
    """Where an RPC's batch, ids and features live in its messages, and what the model must provide."""

    rpc: str
    layout: str
    batch_field: str  # repeated field of the request holding the items
    id_field: str
    feature_type: type[Message]  # message whose fields are named like the features
    sequence_field: str | None  # repeated field inside an item (sequence layouts)
    required_outputs: tuple[str, ...]
    required_thresholds: tuple[str, ...]
    required_constants: tuple[str, ...]
    build_response: Callable[[list[str], Outputs, Manifest], Any]

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


@dataclass(frozen=True)
class InputLayout:
    """What decoding a request of one model version needs from its manifest, computed once at load."""

    inner: tuple[int, ...]  # the input's fixed axes after the batch axis
    item_size: int  # values per item: the product of `inner`
    row_values: Callable[[Any], tuple[Any, ...]] | None  # a message's features in input order (None: scalars)


def input_layout(spec: RpcSpec, manifest: Manifest) -> InputLayout:
    """The layout of `manifest`'s input (check_manifest has made sure its inner axes are fixed)."""
    inner = tuple(int(d or 0) for d in manifest.input.shape[1:])
    row_values = None
    if spec.layout != SCALAR_SEQUENCE:
        # attrgetter of several names returns a tuple per row: the per-item work stays in C.
        names = [f.name for f in manifest.input.features]
        row_values = attrgetter(*names) if len(names) > 1 else (lambda row: (getattr(row, names[0]),))
    return InputLayout(inner, math.prod(inner), row_values)


def encode_request(
    spec: RpcSpec,
    request: Message,
    manifest: Manifest,
    check: validation.RangeCheck,
    max_items: int,
    layout: InputLayout,
) -> tuple[list[str], np.ndarray]:
    """Validate a request and return its ids and its float32 input tensor (raises ValidationError)."""
    items = getattr(request, spec.batch_field)
    count = len(items)
    validation.check_batch_size(spec.batch_field, count, max_items)
    ids = list(map(attrgetter(spec.id_field), items))
    validation.check_ids(spec.batch_field, spec.id_field, ids)
    if spec.sequence_field is not None:
        sequences = list(map(attrgetter(spec.sequence_field), items))
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=count)
        validation.check_lengths(spec.batch_field, spec.sequence_field, lengths, layout.inner[0])
        rows = chain.from_iterable(sequences)
    else:
        rows = iter(items)
    size = count * layout.item_size
    if layout.row_values is None:
        values = np.fromiter(rows, dtype=np.float64, count=size)
    else:
        values = np.fromiter(chain.from_iterable(map(layout.row_values, rows)), dtype=np.float64, count=size)
    values = values.reshape((count, *layout.inner))
    check.check(values, lambda i, t, j: spec.path_of(i, t, j, manifest))
    return ids, values.astype(np.float32)


def _model_ref(manifest: Manifest) -> pb.ModelRef:
    return pb.ModelRef(name=manifest.name, version=manifest.version)


def _bandwidth(ids: list[str], out: Outputs, manifest: Manifest) -> pb.PredictBandwidthResponse:
    response = pb.PredictBandwidthResponse(model=_model_ref(manifest))
    level = manifest.constants["interval_level"]
    columns = (out["predicted_throughput_mbps"], out["lower_bound_mbps"], out["upper_bound_mbps"], out["confidence"])
    add = response.predictions.add
    for link_id, predicted, lower, upper, confidence in zip(ids, *(c.tolist() for c in columns), strict=True):
        add(
            link_id=link_id,
            predicted_throughput_mbps=predicted,
            lower_bound_mbps=lower,
            upper_bound_mbps=upper,
            interval_level=level,
            confidence=confidence,
        )
    return response


def _compression(ids: list[str], out: Outputs, manifest: Manifest) -> pb.SelectCompressionResponse:
    response = pb.SelectCompressionResponse(model=_model_ref(manifest))
    probabilities = out["level_probabilities"].reshape(len(ids), -1)
    levels = out["level"].astype(np.int64)
    chosen = probabilities[np.arange(len(ids)), levels]
    add = response.choices.add
    for link_id, level, probability, row in zip(
        ids, levels.tolist(), chosen.tolist(), probabilities.tolist(), strict=True
    ):
        add(link_id=link_id, level=level, probability=probability, level_probabilities=row)
    return response


def _anomaly(ids: list[str], out: Outputs, manifest: Manifest) -> pb.DetectAnomalyResponse:
    response = pb.DetectAnomalyResponse(model=_model_ref(manifest))
    threshold = manifest.thresholds["anomaly_score"]
    add = response.results.add
    for node_id, score, flag in zip(ids, out["anomaly_score"].tolist(), out["is_anomaly"].tolist(), strict=True):
        add(node_id=node_id, anomaly_score=score, is_anomaly=bool(flag), threshold=threshold)
    return response


def _high_latency(ids: list[str], out: Outputs, manifest: Manifest) -> pb.DetectHighLatencyResponse:
    response = pb.DetectHighLatencyResponse(model=_model_ref(manifest))
    threshold = manifest.thresholds["reconstruction_error"]
    add = response.results.add
    errors, flags = out["reconstruction_error"].tolist(), out["is_high_latency"].tolist()
    for cluster_id, error, flag in zip(ids, errors, flags, strict=True):
        add(cluster_id=cluster_id, reconstruction_error=error, is_high_latency=bool(flag), threshold=threshold)
    return response


SPECS: dict[str, RpcSpec] = {
    spec.rpc: spec
    for spec in (
        RpcSpec(
            "PredictBandwidth",
            MESSAGE_SEQUENCE,
            "links",
            "link_id",
            pb.LinkSample,
            "samples",
            ("predicted_throughput_mbps", "lower_bound_mbps", "upper_bound_mbps", "confidence"),
            (),
            ("interval_level",),
            _bandwidth,
        ),
        RpcSpec(
            "SelectCompression",
            FLAT,
            "items",
            "link_id",
            pb.CompressionFeatures,
            None,
            ("level_probabilities", "level"),
            (),
            (),
            _compression,
        ),
        RpcSpec(
            "DetectAnomaly",
            FLAT,
            "nodes",
            "node_id",
            pb.NodeMetrics,
            None,
            ("anomaly_score", "is_anomaly"),
            ("anomaly_score",),
            (),
            _anomaly,
        ),
        RpcSpec(
            "DetectHighLatency",
            SCALAR_SEQUENCE,
            "windows",
            "cluster_id",
            pb.LatencyWindow,
            "consensus_latencies_ms",
            ("reconstruction_error", "is_high_latency"),
            ("reconstruction_error",),
            (),
            _high_latency,
        ),
    )
}

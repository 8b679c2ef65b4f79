"""Valid random requests of the four RPCs, within the tiny models' feature ranges (bench.tiny_graphs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.tiny_graphs import COMPRESSION_FEATURES, NODE_FEATURES, SAMPLE_FEATURES
from dwcp.inference.v1 import inference_pb2 as pb
from server.rpc_spec import FLAT, MESSAGE_SEQUENCE
from server.rpcs import SPECS

ENUMS = {"link_type", "network_tier"}
SERVICE = pb.DESCRIPTOR.services_by_name["InferenceService"]


def _rows(rng: np.random.Generator, features: list[tuple[Any, ...]], shape: tuple[int, ...]) -> np.ndarray:
    """Valid values: enums from their categories, other features inside a realistic part of their range."""
    columns = []
    for _name, _unit, low, high, categories in features:
        if categories:
            columns.append(rng.choice(sorted(categories.values()), size=shape).astype(np.float64))
        else:
            columns.append(rng.uniform(low, low + (high - low) * 0.01, size=shape))
    return np.stack(columns, axis=-1).astype(np.float32).astype(np.float64)


def _values(names: Sequence[str], row: np.ndarray) -> dict[str, Any]:
    return {name: (int(v) if name in ENUMS else float(v)) for name, v in zip(names, row, strict=True)}


# The features (name, unit, low, high, categories) and item shape of each RPC's tiny model; None: plain numbers.
_INPUTS: dict[str, tuple[list[tuple[Any, ...]] | None, tuple[int, ...]]] = {
    "PredictBandwidth": (SAMPLE_FEATURES, (10,)),
    "SelectCompression": (COMPRESSION_FEATURES, ()),
    "DetectAnomaly": (NODE_FEATURES, ()),
    "DetectHighLatency": (None, (20,)),
}


def random_inputs(rpc: str, items: int, seed: int = 0) -> np.ndarray:
    """A valid float32-exact input batch for `rpc`."""
    rng = np.random.default_rng(seed)
    features, shape = _INPUTS[rpc]
    if features is None:
        return rng.uniform(1, 2000, size=(items, *shape)).astype(np.float32).astype(np.float64)
    return _rows(rng, features, (items, *shape))


def build_request(rpc: str, inputs: np.ndarray, feature_names: Sequence[str] | None = None) -> Any:
    """The request message carrying `inputs`, with ids `id-<index>`, laid out as the RPC's spec says.

    `feature_names` are the columns of `inputs` (default: the tiny model's features, in their order).
    """
    spec = SPECS[rpc]
    features = list(feature_names) if feature_names is not None else [f[0] for f in _INPUTS[rpc][0] or []]
    request_type = getattr(pb, SERVICE.methods_by_name[rpc].input_type.name)
    item_type = getattr(pb, request_type.DESCRIPTOR.fields_by_name[spec.batch_field].message_type.name)
    items = []
    for i, values in enumerate(inputs):
        fields: dict[str, Any] = {spec.id_field: f"id-{i}"}
        if spec.layout == FLAT:
            fields |= _values(features, values)
        elif spec.layout == MESSAGE_SEQUENCE:
            fields[str(spec.sequence_field)] = [spec.feature_type(**_values(features, row)) for row in values]
        else:
            fields[str(spec.sequence_field)] = list(values)
        items.append(item_type(**fields))
    return request_type(**{spec.batch_field: items})

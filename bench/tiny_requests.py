"""Valid random requests of the four RPCs, within the tiny models' feature ranges (bench.tiny_graphs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.tiny_graphs import COMPRESSION_FEATURES, NODE_FEATURES, SAMPLE_FEATURES
from dwcp.inference.v1 import inference_pb2 as pb

ENUMS = {"link_type", "network_tier"}


def _rows(rng: np.random.Generator, features: list[tuple[Any, ...]], shape: tuple[int, ...]) -> np.ndarray:
    """Valid values: enums from their categories, other features inside a realistic part of their range."""
    columns = []
    for _name, _unit, low, high, categories in features:
        if categories:
            columns.append(rng.choice(sorted(categories.values()), size=shape).astype(np.float64))
        else:
            columns.append(rng.uniform(low, low + (high - low) * 0.01, size=shape))
    return np.stack(columns, axis=-1).astype(np.float32).astype(np.float64)


def _message(kind: type, features: list[tuple[Any, ...]], row: np.ndarray, **extra: Any) -> Any:
    values = {f[0]: (int(v) if f[0] in ENUMS else float(v)) for f, v in zip(features, row, strict=True)}
    return kind(**values, **extra)


def random_inputs(rpc: str, items: int, seed: int = 0) -> np.ndarray:
    """A valid float32-exact input batch for `rpc`."""
    rng = np.random.default_rng(seed)
    if rpc == "PredictBandwidth":
        return _rows(rng, SAMPLE_FEATURES, (items, 10))
    if rpc == "SelectCompression":
        return _rows(rng, COMPRESSION_FEATURES, (items,))
    if rpc == "DetectAnomaly":
        return _rows(rng, NODE_FEATURES, (items,))
    return rng.uniform(1, 2000, size=(items, 20)).astype(np.float32).astype(np.float64)


def build_request(rpc: str, inputs: np.ndarray) -> Any:
    """The request message carrying `inputs`, with ids `id-<index>`."""
    if rpc == "PredictBandwidth":
        links = [
            pb.LinkWindow(link_id=f"id-{i}", samples=[_message(pb.LinkSample, SAMPLE_FEATURES, s) for s in window])
            for i, window in enumerate(inputs)
        ]
        return pb.PredictBandwidthRequest(links=links)
    if rpc == "SelectCompression":
        items = [
            _message(pb.CompressionFeatures, COMPRESSION_FEATURES, r, link_id=f"id-{i}") for i, r in enumerate(inputs)
        ]
        return pb.SelectCompressionRequest(items=items)
    if rpc == "DetectAnomaly":
        nodes = [_message(pb.NodeMetrics, NODE_FEATURES, r, node_id=f"id-{i}") for i, r in enumerate(inputs)]
        return pb.DetectAnomalyRequest(nodes=nodes)
    windows = [pb.LatencyWindow(cluster_id=f"id-{i}", consensus_latencies_ms=list(r)) for i, r in enumerate(inputs)]
    return pb.DetectHighLatencyRequest(windows=windows)

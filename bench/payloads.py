"""Realistic request payloads per RPC, built from synthetic telemetry, as proto messages and ghz JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from dwcp.inference.v1 import inference_pb2 as pb

SERVICE = "dwcp.inference.v1.InferenceService"
RPCS = ("PredictBandwidth", "SelectCompression", "DetectAnomaly", "DetectHighLatency")
MODEL_OF_RPC = {
    "PredictBandwidth": "bandwidth_predictor",
    "SelectCompression": "compression_selector",
    "DetectAnomaly": "reliability_detector",
    "DetectHighLatency": "consensus_latency",
}
BANDWIDTH_WINDOW = 10  # samples per link window (docs/artifacts.md)
LATENCY_WINDOW = 20  # consensus latencies per window
# Numeric telemetry columns behind each RPC's items; rows (or windows) with a missing value are skipped,
# as the server refuses non-finite numbers.
SAMPLE_COLUMNS = ("rtt_ms", "jitter_ms", "throughput_mbps", "packet_loss_ratio", "congestion_window")
COMPRESSION_COLUMNS = (
    "throughput_mbps",
    "rtt_ms",
    "hde_compression_ratio",
    "hde_delta_hit_ratio",
    "amst_transfer_rate_mbps",
)
NODE_COLUMNS = ("uptime_pct", "failure_rate", "packet_loss_ratio", "retransmits", "error_budget_burn_rate", "rtt_ms")


def load_telemetry(parquet: Path | None = None) -> pd.DataFrame:
    """Telemetry rows: the given Parquet file, else a small in-memory synthetic dataset (6 nodes, 6 hours)."""
    if parquet is not None and parquet.exists():
        return pd.read_parquet(parquet).head(200_000)
    from training.datagen import generate  # only the payload builder needs the generator

    return generate(nodes=6, hours=6).metrics


def _link_type(name: str) -> int:
    return int(pb.LinkType.Value(f"LINK_TYPE_{name.upper()}"))


def _tier(name: str) -> int:
    return int(pb.NetworkTier.Value(f"NETWORK_TIER_{name.upper()}"))


@dataclass
class ItemPools:
    """Valid items of every RPC, drawn from telemetry; requests are batches sampled from these pools."""

    link_windows: list[pb.LinkWindow]
    compression_items: list[pb.CompressionFeatures]
    nodes: list[pb.NodeMetrics]
    latency_windows: list[pb.LatencyWindow]

    def pool(self, rpc: str) -> list[Any]:
        """The item pool of `rpc`."""
        return {
            "PredictBandwidth": self.link_windows,
            "SelectCompression": self.compression_items,
            "DetectAnomaly": self.nodes,
            "DetectHighLatency": self.latency_windows,
        }[rpc]


def _link_windows(rows: pd.DataFrame, per_link: int) -> list[pb.LinkWindow]:
    windows = []
    for (node, peer), link in rows.sort_values("epoch_time").groupby(["node_id", "peer_id"], sort=True):
        samples = [
            pb.LinkSample(
                rtt_ms=r.rtt_ms,
                jitter_ms=r.jitter_ms,
                throughput_mbps=r.throughput_mbps,
                packet_loss_ratio=r.packet_loss_ratio,
                link_type=_link_type(r.link_type),
                network_tier=_tier(r.network_tier),
                congestion_window_segments=float(r.congestion_window),
            )
            for r in link.itertuples()
        ]
        starts = range(0, len(samples) - BANDWIDTH_WINDOW + 1, BANDWIDTH_WINDOW)
        finite = np.isfinite(link[list(SAMPLE_COLUMNS)].to_numpy(dtype=np.float64)).all(axis=1)
        for start in [s for s in starts if finite[s : s + BANDWIDTH_WINDOW].all()][:per_link]:
            windows.append(pb.LinkWindow(link_id=f"{node}->{peer}", samples=samples[start : start + BANDWIDTH_WINDOW]))
    return windows


def _latency_windows(rows: pd.DataFrame, per_node: int) -> list[pb.LatencyWindow]:
    series = rows.drop_duplicates(["node_id", "epoch_time"]).sort_values("epoch_time")
    windows = []
    for node, node_rows in series.groupby("node_id", sort=True):
        values = node_rows["consensus_latency_ms"].to_numpy(dtype=np.float64)
        for start in range(0, min(len(values) - LATENCY_WINDOW + 1, per_node * LATENCY_WINDOW), LATENCY_WINDOW):
            if not np.isfinite(values[start : start + LATENCY_WINDOW]).all():
                continue
            windows.append(
                pb.LatencyWindow(cluster_id=str(node), consensus_latencies_ms=values[start : start + LATENCY_WINDOW])
            )
    return windows


def build_pools(rows: pd.DataFrame, max_items: int = 2000) -> ItemPools:
    """Item pools of every RPC from telemetry rows (rows and windows with a missing value skipped)."""
    sample = rows.sample(n=min(max_items, len(rows)), random_state=0)
    with_hde = sample.dropna(subset=list(COMPRESSION_COLUMNS))
    compression = [
        pb.CompressionFeatures(
            link_id=f"{r.node_id}->{r.peer_id}",
            throughput_mbps=r.throughput_mbps,
            rtt_ms=r.rtt_ms,
            link_type=_link_type(r.link_type),
            hde_compression_ratio=r.hde_compression_ratio,
            hde_delta_hit_ratio=r.hde_delta_hit_ratio,
            amst_transfer_rate_mbps=r.amst_transfer_rate_mbps,
        )
        for r in with_hde.itertuples()
    ]
    nodes = [
        pb.NodeMetrics(
            node_id=str(r.node_id),
            uptime_pct=r.uptime_pct,
            failure_ratio=r.failure_rate,
            packet_loss_ratio=r.packet_loss_ratio,
            retransmits_count=float(r.retransmits),
            error_budget_burn_rate=r.error_budget_burn_rate,
            rtt_ms=r.rtt_ms,
        )
        for r in sample.dropna(subset=list(NODE_COLUMNS)).itertuples()
    ]
    return ItemPools(_link_windows(rows, per_link=8), compression, nodes, _latency_windows(rows, per_node=64))


def build_requests(pools: ItemPools, rpc: str, batch: int, count: int, seed: int = 0) -> list[Message]:
    """`count` distinct requests of `rpc`, each a batch of `batch` items sampled from the pool."""
    rng = np.random.default_rng(seed)
    pool = pools.pool(rpc)
    request_type = {
        "PredictBandwidth": (pb.PredictBandwidthRequest, "links"),
        "SelectCompression": (pb.SelectCompressionRequest, "items"),
        "DetectAnomaly": (pb.DetectAnomalyRequest, "nodes"),
        "DetectHighLatency": (pb.DetectHighLatencyRequest, "windows"),
    }
    kind, field = request_type[rpc]
    requests: list[Message] = []
    for _ in range(count):
        picks = rng.choice(len(pool), size=batch, replace=len(pool) < batch)
        requests.append(kind(**{field: [pool[i] for i in picks]}))
    return requests


def write_ghz_data(requests: list[Message], path: Path) -> int:
    """Write requests as a JSON array for `ghz --data-file` (sent round-robin); returns the mean size in bytes."""
    path.write_text(json.dumps([MessageToDict(r, preserving_proto_field_name=True) for r in requests]))
    return round(sum(r.ByteSize() for r in requests) / len(requests))

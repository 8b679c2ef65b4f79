"""The inference RPCs, one spec each: adding an inference RPC is its proto method plus one entry here."""

from __future__ import annotations

from dwcp.inference.v1 import inference_pb2 as pb
from server import responses
from server.rpc_spec import FLAT, MESSAGE_SEQUENCE, SCALAR_SEQUENCE, RpcSpec

_SPECS = (
    RpcSpec(
        rpc="PredictBandwidth",
        layout=MESSAGE_SEQUENCE,
        batch_field="links",
        id_field="link_id",
        feature_type=pb.LinkSample,
        sequence_field="samples",
        required_outputs=("predicted_throughput_mbps", "lower_bound_mbps", "upper_bound_mbps", "confidence"),
        required_constants=("interval_level",),
        build_response=responses.bandwidth,
    ),
    RpcSpec(
        rpc="SelectCompression",
        layout=FLAT,
        batch_field="items",
        id_field="link_id",
        feature_type=pb.CompressionFeatures,
        required_outputs=("level_probabilities", "level"),
        build_response=responses.compression,
    ),
    RpcSpec(
        rpc="DetectAnomaly",
        layout=FLAT,
        batch_field="nodes",
        id_field="node_id",
        feature_type=pb.NodeMetrics,
        required_outputs=("anomaly_score", "is_anomaly"),
        required_thresholds=("anomaly_score",),
        build_response=responses.anomaly,
    ),
    RpcSpec(
        rpc="DetectHighLatency",
        layout=SCALAR_SEQUENCE,
        batch_field="windows",
        id_field="cluster_id",
        feature_type=pb.LatencyWindow,
        sequence_field="consensus_latencies_ms",
        required_outputs=("reconstruction_error", "is_high_latency"),
        required_thresholds=("reconstruction_error",),
        build_response=responses.high_latency,
    ),
)

SPECS: dict[str, RpcSpec] = {spec.rpc: spec for spec in _SPECS}
"""Every inference RPC's spec by method name."""

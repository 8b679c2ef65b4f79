"""Tiny ONNX graphs of the four models, built with onnx.helper (signatures per docs/artifacts.md; needs `onnx`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
LINK_TYPES = {"dc": 1, "metro": 2, "wan": 3, "edge": 4}
NETWORK_TIERS = {"tier1": 1, "tier2": 2, "tier3": 3}
SAMPLE_FEATURES: list[tuple[Any, ...]] = [
    ("rtt_ms", "ms", 0, 10000, {}),
    ("jitter_ms", "ms", 0, 10000, {}),
    ("throughput_mbps", "Mbps", 0, 400000, {}),
    ("packet_loss_ratio", "ratio 0-1", 0, 1, {}),
    ("link_type", "enum", 1, 4, LINK_TYPES),
    ("network_tier", "enum", 1, 3, NETWORK_TIERS),
    ("congestion_window_segments", "segments", 1, 10000000, {}),
]
COMPRESSION_FEATURES: list[tuple[Any, ...]] = [
    ("throughput_mbps", "Mbps", 0, 400000, {}),
    ("rtt_ms", "ms", 0, 10000, {}),
    ("link_type", "enum", 1, 4, LINK_TYPES),
    ("hde_compression_ratio", "ratio", 1, 1000, {}),
    ("hde_delta_hit_ratio", "ratio 0-1", 0, 1, {}),
    ("amst_transfer_rate_mbps", "Mbps", 0, 400000, {}),
]
NODE_FEATURES: list[tuple[Any, ...]] = [
    ("uptime_pct", "pct 0-100", 0, 100, {}),
    ("failure_ratio", "ratio 0-1", 0, 1, {}),
    ("packet_loss_ratio", "ratio 0-1", 0, 1, {}),
    ("retransmits_count", "count", 0, 1e9, {}),
    ("error_budget_burn_rate", "ratio", 0, 1e6, {}),
    ("rtt_ms", "ms", 0, 10000, {}),
]
LATENCY_FEATURES: list[tuple[Any, ...]] = [("consensus_latencies_ms", "ms", 0, 600000, {})]
THRESHOLD_ANOMALY = 0.6
THRESHOLD_LATENCY = 0.01


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def _scale(features: list[tuple[Any, ...]]) -> np.ndarray:
    """Divide by each feature's max so the tiny weights see inputs of order 1."""
    return np.array([1.0 / max(f[3], 1) for f in features], dtype=np.float32)


def _bandwidth(rng: np.random.Generator, slow: bool) -> onnx.ModelProto:
    w = rng.normal(0, 1, (70, 2))
    nodes = [
        helper.make_node("Mul", ["link_samples", "scale"], ["scaled"]),
        helper.make_node("Reshape", ["scaled", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["hidden"]),
        helper.make_node("Gather", ["hidden", "zero"], ["h0"], axis=1),
        helper.make_node("Gather", ["hidden", "one"], ["h1"], axis=1),
        helper.make_node("Slice", ["link_samples", "tp_start", "tp_end", "tp_axis"], ["tp_col"]),
        helper.make_node("Reshape", ["tp_col", "seq_shape"], ["samples_throughput"]),
        helper.make_node("Gather", ["samples_throughput", "last"], ["last_tp"], axis=1),
        helper.make_node("Sigmoid", ["h0"], ["gain"]),
        helper.make_node("Mul", ["last_tp", "gain"], ["half"]),
        helper.make_node("Add", ["half", "half"], ["predicted_throughput_mbps"]),
        helper.make_node("Mul", ["predicted_throughput_mbps", "lower_factor"], ["lower_bound_mbps"]),
        helper.make_node("Mul", ["predicted_throughput_mbps", "upper_factor"], ["upper_bound_mbps"]),
        helper.make_node("Sigmoid", ["h1"], ["confidence"]),
    ]
    inits = [
        _const("scale", _scale(SAMPLE_FEATURES)),
        numpy_helper.from_array(np.array([-1, 70], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(np.array([-1, 10], dtype=np.int64), "seq_shape"),
        _const("w", w),
        numpy_helper.from_array(np.array(9, dtype=np.int64), "last"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "one"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "tp_start"),
        numpy_helper.from_array(np.array([3], dtype=np.int64), "tp_end"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "tp_axis"),
        _const("lower_factor", np.array(0.8)),
        _const("upper_factor", np.array(1.2)),
    ]
    inputs = [helper.make_tensor_value_info("link_samples", TensorProto.FLOAT, ["N", 10, 7])]
    outs = ["predicted_throughput_mbps", "lower_bound_mbps", "upper_bound_mbps", "confidence"]
    outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N"]) for o in outs]
    if slow:
        nodes, inits = _make_slow(nodes, inits, "link_samples", "confidence")
    return helper.make_model(
        helper.make_graph(nodes, "bandwidth_predictor", inputs, outputs, inits),
        opset_imports=[helper.make_opsetid("", OPSET)],
    )


def _make_slow(
    nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], source: str, output: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Add ~a second of input-dependent matrix products (not constant-foldable) to `output`, for drain tests."""
    for node in nodes:
        node.output[:] = [f"{output}_fast" if o == output else o for o in node.output]
    extra = [
        helper.make_node("ReduceSum", [source], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "tiny"], ["seed"]),
        helper.make_node("Expand", ["seed", "square"], ["m0"]),
    ]
    for i in range(6):
        extra.append(helper.make_node("MatMul", [f"m{i}", f"m{i}"], [f"m{i + 1}"]))
    extra += [
        helper.make_node("ReduceSum", ["m6"], ["waste"], keepdims=0),
        helper.make_node("Mul", ["waste", "nothing"], ["zero_waste"]),
        helper.make_node("Add", [f"{output}_fast", "zero_waste"], [output]),
    ]
    inits = [
        *inits,
        _const("tiny", np.array(1e-30)),
        _const("nothing", np.array(0.0)),
        numpy_helper.from_array(np.array([1024, 1024], dtype=np.int64), "square"),
    ]
    return nodes + extra, inits


def _compression(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Mul", ["compression_features", "scale"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "w"], ["logits_raw"]),
        helper.make_node("Add", ["logits_raw", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["level_probabilities"], axis=1),
        helper.make_node("ArgMax", ["level_probabilities"], ["level"], axis=1, keepdims=0),
    ]
    inits = [_const("scale", _scale(COMPRESSION_FEATURES)), _const("w", rng.normal(0, 3, (6, 10)))]
    inits.append(_const("b", rng.normal(0, 0.5, 10)))
    graph = helper.make_graph(
        nodes,
        "compression_selector",
        [helper.make_tensor_value_info("compression_features", TensorProto.FLOAT, ["N", 6])],
        [
            helper.make_tensor_value_info("level_probabilities", TensorProto.FLOAT, ["N", 10]),
            helper.make_tensor_value_info("level", TensorProto.INT64, ["N"]),
        ],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def _anomaly(rng: np.random.Generator) -> onnx.ModelProto:
    # Scores come out as [N, 1] on purpose: the server must flatten them.
    nodes = [
        helper.make_node("Mul", ["node_metrics", "scale"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "w"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["anomaly_score"]),
        helper.make_node("GreaterOrEqual", ["anomaly_score", "threshold"], ["is_anomaly"]),
    ]
    inits = [
        _const("scale", _scale(NODE_FEATURES)),
        _const("w", rng.normal(0, 3, (6, 1))),
        _const("threshold", np.array(THRESHOLD_ANOMALY)),
    ]
    graph = helper.make_graph(
        nodes,
        "reliability_detector",
        [helper.make_tensor_value_info("node_metrics", TensorProto.FLOAT, ["N", 6])],
        [
            helper.make_tensor_value_info("anomaly_score", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("is_anomaly", TensorProto.BOOL, ["N", 1]),
        ],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def _latency(rng: np.random.Generator) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Mul", ["consensus_latencies_ms", "scale"], ["scaled"]),
        helper.make_node("ReduceMean", ["scaled"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["scaled", "mean"], ["centred"]),
        helper.make_node("Mul", ["centred", "centred"], ["squared"]),
        helper.make_node("ReduceMean", ["squared"], ["reconstruction_error"], axes=[1], keepdims=0),
        helper.make_node("Greater", ["reconstruction_error", "threshold"], ["is_high_latency"]),
    ]
    inits = [
        _const("scale", np.array(rng.uniform(0.5, 1.5) / 1000.0)),
        _const("threshold", np.array(THRESHOLD_LATENCY)),
    ]
    graph = helper.make_graph(
        nodes,
        "consensus_latency",
        [helper.make_tensor_value_info("consensus_latencies_ms", TensorProto.FLOAT, ["N", 20])],
        [
            helper.make_tensor_value_info("reconstruction_error", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("is_high_latency", TensorProto.BOOL, ["N"]),
        ],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def build_model(name: str, seed: int = 0, slow: bool = False) -> onnx.ModelProto:
    """The tiny ONNX graph of model `name`; `seed` changes its weights (and so its outputs)."""
    rng = np.random.default_rng(seed)
    builders = {
        "bandwidth_predictor": lambda: _bandwidth(rng, slow),
        "compression_selector": lambda: _compression(rng),
        "reliability_detector": lambda: _anomaly(rng),
        "consensus_latency": lambda: _latency(rng),
    }
    model = builders[name]()
    model.ir_version = 8  # readable by every onnxruntime we use
    onnx.checker.check_model(model)
    return model

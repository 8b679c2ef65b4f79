"""The onnxruntime session every exported graph is run in, by training (parity, latency) and by the server."""

from __future__ import annotations

import onnxruntime as ort


def session_options(intra_op_threads: int = 1) -> ort.SessionOptions:
    """Options measured for low latency on small graphs (docs/performance.md): no thread hand-offs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def ort_session(model: bytes | str, intra_op_threads: int = 1) -> ort.InferenceSession:
    """A CPU session of `model` (serialized graph or file path) with `session_options`."""
    return ort.InferenceSession(model, session_options(intra_op_threads), providers=["CPUExecutionProvider"])

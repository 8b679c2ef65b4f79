"""The onnxruntime latency of an exported graph, measured at export and recorded in the manifest."""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort


def median_latency_us(session: ort.InferenceSession, feed: dict[str, np.ndarray], repeats: int = 200) -> float:
    """Median wall time of one `session.run` call on `feed`, in microseconds (after warm-up)."""
    for _ in range(10):
        session.run(None, feed)
    times_s = np.empty(repeats)
    for i in range(repeats):
        start_s = time.perf_counter()
        session.run(None, feed)
        times_s[i] = time.perf_counter() - start_s
    return float(np.median(times_s) * 1e6)

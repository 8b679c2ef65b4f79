"""Write a model version directory (model.onnx + manifest.json) atomically, per docs/artifacts.md."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort


def ort_session(model_bytes: bytes, intra_op_threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime CPU session configured like the server: few threads, sequential execution."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


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


class ParityError(RuntimeError):
    """The exported graph disagrees with the native model beyond tolerance."""


@dataclass(frozen=True)
class ParityReport:
    """ONNX vs native model on the same rows; `near_threshold_rows` are float ties tolerated."""

    rows: int
    max_abs_diff: float
    decisions_identical: bool
    near_threshold_rows: int = 0

    def to_manifest(self) -> dict[str, float | int | bool]:
        """The manifest's `parity` object."""
        return {
            "rows": self.rows,
            "max_abs_diff": self.max_abs_diff,
            "decisions_identical": self.decisions_identical,
            "near_threshold_rows": self.near_threshold_rows,
        }


@dataclass(frozen=True)
class Decision:
    """One decision output: native vs ONNX values and where a mismatch is a tolerated tie."""

    name: str
    expected: np.ndarray
    got: np.ndarray
    tie: np.ndarray  # bool per row: native score within tolerance of the decision boundary


def check_parity(
    scores: dict[str, tuple[np.ndarray, np.ndarray]],
    decisions: list[Decision],
    atol: float,
    rtol: float = 0.0,
) -> ParityReport:
    """Compare (expected, got) score arrays and decisions; raise ParityError naming the output.

    A score passes where |got - expected| <= atol + rtol * |expected| (rtol for values in Mbps).
    """
    max_abs_diff, rows = 0.0, 0
    for name, (expected, got) in scores.items():
        exp = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
        diff = np.abs(exp - np.asarray(got, dtype=np.float64).reshape(exp.shape))
        rows = len(exp)
        excess = diff - (atol + rtol * np.abs(exp))
        if diff.size and not excess.max() <= 0.0:  # also catches NaN
            row = int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)) // exp.shape[1])
            raise ParityError(f"output {name!r}: row {row} differs by {diff.max():.3g} (atol {atol:g}, rtol {rtol:g})")
        max_abs_diff = max(max_abs_diff, float(diff.max()) if diff.size else 0.0)
    identical, ties = True, 0
    for d in decisions:
        mismatch = np.asarray(d.expected).ravel() != np.asarray(d.got).ravel()
        tie = np.asarray(d.tie, dtype=bool).ravel()
        if (mismatch & ~tie).any():
            row = int(np.flatnonzero(mismatch & ~tie)[0])
            raise ParityError(f"output {d.name!r}: decision differs on row {row}")
        identical = identical and not mismatch.any()
        ties += int(tie.sum())
        rows = len(mismatch)
    return ParityReport(rows, max_abs_diff, identical, ties)

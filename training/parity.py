"""Parity of an exported graph with its native model, judged on what a user sees.

Decisions (a class, a flag) must be identical except on rows whose native score lies within the
tolerance of the boundary; those rows are counted apart. A float output may differ by at most
`tolerance` times its own scale: the target's typical deviation for a regressor (Mbps for the
bandwidth predictor), the threshold for a score compared with one, 1 for a 0-1 score. A check never
raises: it returns the report and, on failure, a message naming the output, the largest difference,
the row and the likely cause, so the caller can still write the trained model somewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from artifacts.schema import ParityReport

# A difference of 1 % of an output's scale changes no decision and no reported metric at its precision;
# float32 differences between TensorFlow (or scikit-learn) and onnxruntime are orders of magnitude smaller.
DEFAULT_TOLERANCE = 0.01


class ParityError(RuntimeError):
    """The exported graph disagrees with the native model beyond tolerance (ParityCheck.raise_for_failure)."""


@dataclass(frozen=True)
class Score:
    """One float output: native vs ONNX values and the scale its differences are judged against."""

    name: str
    expected: np.ndarray
    got: np.ndarray
    scale: float = 1.0  # the output's own scale, in its unit
    scale_source: str = "a 0-1 score"  # what the scale is, for messages and the report


@dataclass(frozen=True)
class Decision:
    """One decision output: native vs ONNX values and where a mismatch is a tolerated tie."""

    name: str
    expected: np.ndarray
    got: np.ndarray
    tie: np.ndarray  # bool per row: native score within the tolerance of the decision boundary


@dataclass(frozen=True)
class ParityCheck:
    """The outcome: the manifest's report, each output's figures, and the failure message ("" if none)."""

    report: ParityReport
    tolerance: float
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> largest difference, scale, row
    failure: str = ""

    @property
    def passed(self) -> bool:
        """Whether every output is within tolerance and every decision identical but for ties."""
        return not self.failure

    def raise_for_failure(self) -> None:
        """Raise ParityError with the failure message, if any."""
        if self.failure:
            raise ParityError(self.failure)

    def to_json(self) -> dict[str, Any]:
        """For the training report: the manifest's figures plus the tolerance, per-output figures and failure."""
        return asdict(self.report) | {"tolerance": self.tolerance, "outputs": self.outputs, "failure": self.failure}


Explain = Callable[[int], list[str]]  # row -> likely causes of a difference on that row (most likely first)

GENERIC_CAUSE = (
    "float32 arithmetic differs between the native model and onnxruntime; if a difference of this size is "
    "immaterial, raise --parity-tolerance"
)


def _largest(diff: np.ndarray) -> tuple[int, float]:
    """(row, difference) of the worst element of a [rows, k] difference array; NaN counts as the worst."""
    worst = np.where(np.isnan(diff), np.inf, diff)
    flat = int(np.argmax(worst))
    return flat // diff.shape[1], float(diff.flat[flat])


def check_parity(
    scores: list[Score], decisions: list[Decision], tolerance: float, explain: Explain | None = None
) -> ParityCheck:
    """Compare float outputs (|got - expected| <= tolerance * scale) and decisions (identical but for ties).

    The first failing output gives the message; every output's figures are in `outputs` either way.
    """
    failure, outputs, rows = "", {}, 0
    max_abs_diff = 0.0
    for s in scores:
        exp = np.asarray(s.expected, dtype=np.float64).reshape(len(s.expected), -1)
        got = np.asarray(s.got, dtype=np.float64).reshape(exp.shape)
        diff = np.abs(exp - got)
        rows = len(exp)
        if not diff.size:
            continue
        row, largest = _largest(diff)
        ratio = largest / s.scale if s.scale > 0 else float("inf")
        outputs[s.name] = {"max_abs_diff": largest, "row": row, "scale": s.scale, "scale_source": s.scale_source}
        outputs[s.name]["max_diff_in_scales"] = ratio
        max_abs_diff = max(max_abs_diff, largest if np.isfinite(largest) else float("inf"))
        if failure or largest <= tolerance * s.scale:
            continue
        if not (np.isfinite(exp[row]).all() and np.isfinite(got[row]).all()):
            side = "native" if not np.isfinite(exp[row]).all() else "ONNX"
            causes = [f"the {side} output is not finite on that row"]
        else:
            causes = (explain(row) if explain else []) or [GENERIC_CAUSE]
        failure = (
            f"output {s.name!r} differs from the native model by {largest:.3g} on row {row} "
            f"({ratio:.3g} x its scale {s.scale:.3g}, {s.scale_source}; tolerance {tolerance:g} x scale); "
            f"likely cause: {'; '.join(causes)}"
        )
    identical, ties = True, 0
    for d in decisions:
        mismatch = np.asarray(d.expected).ravel() != np.asarray(d.got).ravel()
        tie = np.asarray(d.tie, dtype=bool).ravel()
        rows = len(mismatch)
        bad = np.flatnonzero(mismatch & ~tie)
        outputs[d.name] = {"rows_differing": int(mismatch.sum()), "near_threshold_rows": int((mismatch & tie).sum())}
        if bad.size and not failure:
            row = int(bad[0])
            causes = (explain(row) if explain else []) or [GENERIC_CAUSE]
            failure = (
                f"output {d.name!r}: the decision differs from the native model on {bad.size} row(s) away from "
                f"the threshold, first on row {row} (native {d.expected.ravel()[row]}, ONNX {d.got.ravel()[row]}; "
                f"tolerance {tolerance:g}); likely cause: {'; '.join(causes)}"
            )
        identical = identical and not mismatch.any()
        ties += int((mismatch & tie).sum())  # rows whose decision differs, explained by a float tie
    return ParityCheck(ParityReport(rows, max_abs_diff, identical, ties), tolerance, outputs, failure)


def target_scale(values: np.ndarray) -> tuple[float, str]:
    """A regressor's scale: the median absolute deviation of its targets; their mean |value|, then 1, if 0."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size:
        mad = float(np.median(np.abs(v - np.median(v))))
        if mad > 0:
            return mad, "median absolute deviation of the test targets"
        level = float(np.mean(np.abs(v)))
        if level > 0:
            return level, "mean |value| of the (constant) test targets"
    return 1.0, "1 (the test targets are all 0)"

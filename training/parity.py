"""Parity of an exported graph with its native model: scores within tolerance, decisions identical but for ties."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artifacts.schema import ParityReport


class ParityError(RuntimeError):
    """The exported graph disagrees with the native model beyond tolerance."""


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
    The report is the manifest's `parity` (artifacts.schema.ParityReport).
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

"""The bandwidth forecast's arithmetic around the network: persistence plus a shrunk, scale-free correction.

The network never sees a throughput level. It sees the window relative to its last sample, in units of
the window's own volatility, and predicts the next sample in those units (quantile heads):

    scale = mean |x[t] - x[t-1]| + 1e-3 * mean |x| + 1e-6          (Mbps)
    input = (x - x[-1]) / scale
    next  = x[-1] + shrink * scale * clip(z_median, -Z, Z)

so a steady link is predicted at its level, the same window at 10 Mbps or 10 Gbps gets the same answer
in proportion, and nothing reverts towards the levels of the training data. A window whose every step
goes the same way is never forecast to turn back past its last sample (the median is held at or beyond
it): clean trends are rare in telemetry, so this is stated rather than left to what the network learnt.
`shrink` (0-1) is chosen on the validation split: where the correction does not help, the forecast is
persistence. The interval is
the quantile heads widened by a split-conformal margin (CQR) fit on validation, so it covers 90 %.
The same arithmetic runs in NumPy (training targets, evaluation) and in TensorFlow (the exported graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

RELATIVE_FLOOR = 1e-3  # share of the window's mean level added to its volatility (a steady link's scale)
ABSOLUTE_FLOOR_MBPS = 1e-6
Z_LIMIT = 50.0  # corrections beyond this many volatility units are clipped (targets and predictions)
INTERVAL_LEVEL = 0.9
SHRINK_GRID = np.linspace(0.0, 1.0, 21)


def window_scale(throughput_mbps: np.ndarray) -> np.ndarray:
    """[N, T] -> [N] the window's volatility in Mbps, floored so a flat window has a small positive scale."""
    x = np.asarray(throughput_mbps, dtype=np.float64)
    return np.abs(np.diff(x, axis=1)).mean(axis=1) + RELATIVE_FLOOR * np.abs(x).mean(axis=1) + ABSOLUTE_FLOOR_MBPS


def relative_window(throughput_mbps: np.ndarray) -> np.ndarray:
    """[N, T] -> [N, T] the window relative to its last sample, in units of window_scale."""
    x = np.asarray(throughput_mbps, dtype=np.float64)
    return (x - x[:, -1:]) / window_scale(x)[:, None]


def encode_target(throughput_mbps: np.ndarray, next_mbps: np.ndarray) -> np.ndarray:
    """The training target: the next sample's change from the last one, in volatility units, clipped."""
    x = np.asarray(throughput_mbps, dtype=np.float64)
    return np.clip((np.asarray(next_mbps) - x[:, -1]) / window_scale(x), -Z_LIMIT, Z_LIMIT)


@dataclass(frozen=True)
class Calibration:
    """What is fit on validation: the correction's shrink factor and the conformal interval margin."""

    shrink: float  # 0: persistence, 1: the network's median as it is
    margin_z: float  # added below the lower and above the upper head, in volatility units

    @classmethod
    def fit(cls, z_heads: np.ndarray, z_actual: np.ndarray, scale: np.ndarray) -> Calibration:
        """Shrink minimising MAE in Mbps; margin = the conformal quantile of the heads' misses (CQR)."""
        heads = np.sort(np.clip(z_heads, -Z_LIMIT, Z_LIMIT), axis=1)
        errors = [np.mean(np.abs(scale * (g * heads[:, 1] - z_actual))) for g in SHRINK_GRID]
        shrink = float(SHRINK_GRID[int(np.argmin(errors))])
        miss = np.maximum(heads[:, 0] - z_actual, z_actual - heads[:, 2])
        n = len(miss)
        level = min(1.0, np.ceil((n + 1) * INTERVAL_LEVEL) / n) if n else INTERVAL_LEVEL
        margin = float(np.quantile(miss, level)) if n else 0.0
        return cls(shrink, margin)

    def decode(self, throughput_mbps: np.ndarray, z_heads: np.ndarray) -> dict[str, np.ndarray]:
        """NumPy forecast of windows [N, T] from the heads (the reference for the graph; used in tests)."""
        x = np.asarray(throughput_mbps, dtype=np.float64)
        last_mbps, scale = x[:, -1], window_scale(x)
        heads = np.sort(np.clip(z_heads, -Z_LIMIT, Z_LIMIT), axis=1)
        predicted = np.maximum(last_mbps + self.shrink * scale * heads[:, 1], 0.0)
        predicted = hold_trend(throughput_mbps, predicted)
        lower = np.minimum(np.maximum(last_mbps + scale * (heads[:, 0] - self.margin_z), 0.0), predicted)
        upper = np.maximum(last_mbps + scale * (heads[:, 2] + self.margin_z), predicted)
        return {"predicted_throughput_mbps": predicted, "lower_bound_mbps": lower, "upper_bound_mbps": upper}

    def to_manifest(self) -> dict[str, Any]:
        """`constants.forecast` of the manifest: how the graph turns the heads into Mbps."""
        return {
            "kind": "persistence_plus_scaled_correction",
            "shrink": self.shrink,
            "margin_volatility_units": self.margin_z,
            "relative_floor": RELATIVE_FLOOR,
            "absolute_floor_mbps": ABSOLUTE_FLOOR_MBPS,
            "z_limit": Z_LIMIT,
        }


def hold_trend(throughput_mbps: np.ndarray, predicted_mbps: np.ndarray) -> np.ndarray:
    """The forecast, held at or above the last sample of strictly rising windows (below, falling ones)."""
    steps = np.diff(np.asarray(throughput_mbps, dtype=np.float64), axis=1)
    last = np.asarray(throughput_mbps, dtype=np.float64)[:, -1]
    held = np.where((steps > 0).all(axis=1), np.maximum(predicted_mbps, last), predicted_mbps)
    return np.where((steps < 0).all(axis=1), np.minimum(held, last), held)


def trend_windows(rng: np.random.Generator, count: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Clean linear trends and steady levels (a quarter of them) with the sample that continues each.

    Mixed into the training windows: clean trends of `steps` samples are rare in telemetry, so without
    them the network has no evidence either way, and a rule a user can state ("a steady link stays at
    its level, a steady ramp does not reverse") would rest on chance.
    """
    level = np.exp(rng.uniform(np.log(0.5), np.log(5e4), count))
    slope = level * rng.uniform(0.01, 0.2, count) * rng.choice([-1.0, 1.0], count)
    slope[: count // 4] = 0.0
    x = level[:, None] + slope[:, None] * (np.arange(steps) - steps + 1)[None, :]
    x *= np.exp(0.002 * rng.standard_normal(x.shape))
    keep = x.min(axis=1) > 0
    return x[keep], np.maximum(level + slope, 0.0)[keep]

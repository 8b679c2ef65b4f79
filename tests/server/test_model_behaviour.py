"""Behaviour of the committed models through the server's runtime, as properties an operator states in one line.

Every figure a property uses (level threshold, typical latency, healthy quartiles) is read from the model's
own manifest, so the properties hold for any retrained set. tests/training/test_behaviour_tiny.py runs the
same properties on tiny models trained in the test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifacts import versions
from server.runtime import LoadedModel, load_version
from tests.server.helpers import ROOT

MODELS = ROOT / "models"
STEPS = 20
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


def newest_version(model_dir: Path) -> Path:
    """The newest published version of one model (the test fails when there is none)."""
    version = versions.newest_version(model_dir)
    assert version is not None, f"no version under {model_dir}"
    return version


@dataclass(frozen=True)
class Served:
    """A version loaded as the server loads it, with its manifest.json as written (nested constants too)."""

    model: LoadedModel
    raw: dict[str, Any]

    def run(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """One batch through the runtime."""
        return self.model.run(inputs)


def load(version_dir: Path) -> Served:
    """Load one version the way the server does (checks, example inference, warm-up)."""
    model = load_version(version_dir, intra_op_threads=1, max_batch_items=64)
    return Served(model, json.loads((version_dir / "manifest.json").read_text()))


def manifest_value(served: Served, section: str, key: str) -> Any:
    """manifest[section][key] ("thresholds" or "constants"); a manifest without it fails the property (training
    has recorded these figures since issue 16, so a set without them is a stale export, not a reason to skip)."""
    values: dict[str, Any] = served.raw.get(section, {})
    if key not in values:
        where = f"{served.model.name}/{served.model.version}"
        pytest.fail(f"{where}: its manifest has no {section}.{key}; re-export it with `make train-export`")
    return values[key]


# --- consensus latency -------------------------------------------------------------------------------------


def high_latency(model: Served, windows: np.ndarray) -> np.ndarray:
    """is_high_latency per window, through the runtime."""
    return model.run(np.asarray(windows, np.float32).reshape(-1, STEPS))["is_high_latency"].astype(bool)


def check_steady_above_the_level_threshold_is_flagged(model: Served) -> None:
    """A window steady (within 1 %) above the p99.9 of normal training latencies is high latency."""
    level_ms = float(manifest_value(model, "thresholds", "level_ms"))

    @PROPERTY_SETTINGS
    @given(
        factor=st.floats(1.03, 50.0),
        jitter=st.lists(st.floats(-0.01, 0.01), min_size=STEPS, max_size=STEPS),
    )
    def flagged(factor: float, jitter: list[float]) -> None:
        window = level_ms * factor * (1.0 + np.asarray(jitter))
        assert high_latency(model, window)[0], f"steady at {window.mean():.0f} ms (threshold {level_ms:.0f} ms)"

    flagged()


def check_one_large_spike_is_flagged_as_it_arrives(model: Served) -> None:
    """One latency 25-100x the rest (the issue's 500 ms in a 20 ms window), arriving as the newest of a window
    otherwise steady at 1-4x the median normal training latency, is high latency."""
    typical_ms = float(manifest_value(model, "constants", "normal_median_ms"))

    @PROPERTY_SETTINGS
    @given(base=st.floats(1.0, 4.0), factor=st.floats(25.0, 100.0))
    def flagged(base: float, factor: float) -> None:
        window = np.full(STEPS, typical_ms * base)
        window[-1] *= factor
        assert high_latency(model, window)[0], f"spike of {window[-1]:.0f} ms on {window[0]:.1f} ms not flagged"

    flagged()


def check_steady_normal_window_is_not_flagged(model: Served) -> None:
    """A window steady at any level below the level threshold is not high latency."""
    level_ms = float(manifest_value(model, "thresholds", "level_ms"))

    @PROPERTY_SETTINGS
    @given(fraction=st.floats(0.001, 0.98))
    def not_flagged(fraction: float) -> None:
        window = np.full(STEPS, level_ms * fraction)
        assert not high_latency(model, window)[0], f"steady at {window[0]:.1f} ms flagged"

    not_flagged()


def check_a_fall_is_not_flagged(model: Served) -> None:
    """High latency means high: latency falling to 1/25-1/2 of a steady normal level, in the newest sample or
    the two newest, is not high latency."""
    manifest_value(model, "thresholds", "held_z")  # models before issue 16's arrival rules flag any odd shape
    typical_ms = float(manifest_value(model, "constants", "normal_median_ms"))

    @PROPERTY_SETTINGS
    @given(base=st.floats(1.0, 4.0), factor=st.floats(1 / 25, 0.5), samples=st.integers(1, 2))
    def not_flagged(base: float, factor: float, samples: int) -> None:
        window = np.full(STEPS, typical_ms * base)
        window[-samples:] *= factor
        assert not high_latency(model, window)[0], f"fall to {window[-1]:.2f} ms from {window[0]:.1f} ms flagged"

    not_flagged()


def check_a_step_is_flagged_as_it_arrives_not_while_it_holds(model: Served) -> None:
    """A step up to 2-10x a steady normal level is high latency by its second sample, and no longer once it
    has held for half the window or more (below the level threshold it is the series' new level): flagged
    when it arrives, not in each of the 20 windows that hold it."""
    manifest_value(model, "thresholds", "held_z")  # models before issue 16's arrival rules flag every such window
    typical_ms = float(manifest_value(model, "constants", "normal_median_ms"))
    level_ms = float(manifest_value(model, "thresholds", "level_ms"))

    @PROPERTY_SETTINGS
    @given(base=st.floats(1.0, 4.0), factor=st.floats(2.0, 10.0), held=st.integers(STEPS // 2, STEPS - 1))
    def flagged_then_not(base: float, factor: float, held: int) -> None:
        window = np.full(STEPS, typical_ms * base)
        window[-2:] *= factor
        assert high_latency(model, window)[0], f"step to {window[-1]:.1f} ms from {window[0]:.1f} ms not flagged"
        window[-held:] = window[-1]
        if window[-1] < level_ms:  # above it, the level rule flags the window for as long as the step holds
            assert not high_latency(model, window)[0], f"step to {window[-1]:.1f} ms still flagged after {held}"

    flagged_then_not()


# --- reliability ---------------------------------------------------------------------------------------------


def anomaly(model: Served, rows: np.ndarray) -> dict[str, np.ndarray]:
    """anomaly_score and is_anomaly per row, through the runtime."""
    return model.run(np.asarray(rows, np.float32).reshape(-1, len(model.model.manifest.input.features)))


def healthy_quartiles(model: Served) -> np.ndarray:
    """[3, features]: p25/p50/p75 of normal training rows."""
    return np.asarray(manifest_value(model, "constants", "normal_feature_quartiles"), np.float64)


def bad_extreme(model: Served) -> np.ndarray:
    """Every feature at the end of its range an operator fears: uptime at its minimum, the rest at their maximum."""
    features = model.model.manifest.input.features
    return np.asarray([f.min_value if f.name == "uptime_pct" else f.max_value for f in features], np.float64)


def check_healthy_node_is_not_flagged(model: Served) -> None:
    """A node near the middle of normal training rows on every metric is not anomalous."""
    q = healthy_quartiles(model)

    @PROPERTY_SETTINGS
    @given(offsets=st.lists(st.floats(-0.25, 0.25), min_size=q.shape[1], max_size=q.shape[1]))
    def not_flagged(offsets: list[float]) -> None:
        row = q[1] + np.asarray(offsets) * (q[2] - q[0])
        assert not anomaly(model, row)["is_anomaly"][0], f"healthy row {row.tolist()} flagged"

    not_flagged()


def check_bad_extreme_node_is_flagged(model: Served) -> None:
    """A node with every metric at its bad extreme is anomalous."""
    assert anomaly(model, bad_extreme(model))["is_anomaly"][0]


def check_swapping_two_features_changes_the_answer(model: Served) -> None:
    """The feature order is real: swapping any two differing metrics of a healthy node changes its score."""
    names = [f.name for f in model.model.manifest.input.features]
    healthy = healthy_quartiles(model)[1]
    before = anomaly(model, healthy)["anomaly_score"][0]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if np.float32(healthy[i]) == np.float32(healthy[j]):
                continue
            swapped = healthy.copy()
            swapped[[i, j]] = swapped[[j, i]]
            assert anomaly(model, swapped)["anomaly_score"][0] != before, f"swapping {names[i]} and {names[j]}"


# --- bandwidth ---------------------------------------------------------------------------------------------

BANDWIDTH_STEPS = 10
# Values for the optional features of a version that uses them (a plain healthy WAN link).
OTHER_FEATURES = {
    "rtt_ms": 40.0,
    "jitter_ms": 1.0,
    "packet_loss_ratio": 0.0005,
    "link_type": 3.0,
    "network_tier": 1.0,
    "congestion_window_segments": 3000.0,
}


def forecast(model: Served, throughput_mbps: np.ndarray) -> dict[str, np.ndarray]:
    """The runtime's forecast for windows of throughput (any other feature the version uses held steady)."""
    names = [f.name for f in model.model.manifest.input.features]
    windows = np.asarray(throughput_mbps, np.float64).reshape(-1, BANDWIDTH_STEPS)
    inputs = np.empty((len(windows), BANDWIDTH_STEPS, len(names)), np.float32)
    for j, name in enumerate(names):
        inputs[:, :, j] = windows if name == "throughput_mbps" else OTHER_FEATURES[name]
    return model.run(inputs)


def check_steady_link_is_predicted_at_its_level(model: Served) -> None:
    """A link steady (within 0.5 %) at any level is predicted within 5 % of that level."""

    @PROPERTY_SETTINGS
    @given(
        level=st.floats(0.1, 100_000.0),
        jitter=st.lists(st.floats(-0.005, 0.005), min_size=BANDWIDTH_STEPS, max_size=BANDWIDTH_STEPS),
    )
    def steady(level: float, jitter: list[float]) -> None:
        predicted = float(forecast(model, level * (1.0 + np.array(jitter)))["predicted_throughput_mbps"][0])
        assert abs(predicted - level) <= 0.05 * level, (level, predicted)

    steady()


def check_steady_trend_is_not_reversed(model: Served) -> None:
    """A link rising (falling) steadily is not predicted to fall (rise) from its last sample."""

    @PROPERTY_SETTINGS
    @given(
        start=st.floats(1.0, 10_000.0),
        step_share=st.floats(0.02, 0.15),
        rising=st.booleans(),
    )
    def trend(start: float, step_share: float, rising: bool) -> None:
        window = start * (1.0 + step_share * np.arange(BANDWIDTH_STEPS))
        window = window if rising else window[::-1]
        predicted = forecast(model, window)["predicted_throughput_mbps"][0]
        last = np.float32(window[-1])  # what the model saw, in float32
        if rising:
            assert predicted >= last, (window, predicted)
        else:
            assert predicted <= last, (window, predicted)

    trend()


def check_interval_holds_the_prediction(model: Served) -> None:
    """On noisy windows, 0 <= lower <= predicted <= upper and the confidence is 0-1."""
    rng = np.random.default_rng(0)
    windows = rng.lognormal(np.log(rng.uniform(1, 5_000, (200, 1))), 0.4, (200, BANDWIDTH_STEPS))
    out = forecast(model, windows)
    lower, predicted, upper = out["lower_bound_mbps"], out["predicted_throughput_mbps"], out["upper_bound_mbps"]
    assert (lower >= 0).all() and (lower <= predicted).all() and (predicted <= upper).all()
    assert ((out["confidence"] >= 0) & (out["confidence"] <= 1)).all()


BANDWIDTH_PROPERTIES = [
    check_steady_link_is_predicted_at_its_level,
    check_steady_trend_is_not_reversed,
    check_interval_holds_the_prediction,
]
CONSENSUS_PROPERTIES = [
    check_steady_above_the_level_threshold_is_flagged,
    check_one_large_spike_is_flagged_as_it_arrives,
    check_steady_normal_window_is_not_flagged,
    check_a_fall_is_not_flagged,
    check_a_step_is_flagged_as_it_arrives_not_while_it_holds,
]
RELIABILITY_PROPERTIES = [
    check_healthy_node_is_not_flagged,
    check_bad_extreme_node_is_flagged,
    check_swapping_two_features_changes_the_answer,
]


@pytest.fixture(scope="module")
def committed() -> dict[str, Served]:
    names = ("bandwidth_predictor", "consensus_latency", "reliability_detector")
    return {name: load(newest_version(MODELS / name)) for name in names}


@pytest.mark.parametrize("check", CONSENSUS_PROPERTIES, ids=lambda c: c.__name__)
def test_committed_consensus_model(committed: dict[str, Served], check: Any) -> None:
    check(committed["consensus_latency"])


@pytest.mark.parametrize("check", RELIABILITY_PROPERTIES, ids=lambda c: c.__name__)
def test_committed_reliability_model(committed: dict[str, Served], check: Any) -> None:
    check(committed["reliability_detector"])


@pytest.mark.parametrize("check", BANDWIDTH_PROPERTIES, ids=lambda c: c.__name__)
def test_committed_bandwidth_model(committed: dict[str, Served], check: Any) -> None:
    check(committed["bandwidth_predictor"])

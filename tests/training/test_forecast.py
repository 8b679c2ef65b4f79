"""The forecast arithmetic: scale-free inputs, calibration on validation, trend windows."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from training import forecast

RNG = np.random.default_rng(0)


@given(st.floats(0.1, 1e5), st.floats(0.1, 1e3))
def test_relative_window_does_not_see_the_level(level: float, factor: float) -> None:
    x = level * np.exp(0.3 * np.random.default_rng(1).standard_normal((4, 10)))
    np.testing.assert_allclose(forecast.relative_window(x), forecast.relative_window(factor * x), rtol=1e-3, atol=1e-3)


def test_a_steady_window_has_a_small_positive_scale_and_zero_input() -> None:
    x = np.full((1, 10), 250.0)
    assert 0 < forecast.window_scale(x)[0] <= 0.26
    assert not forecast.relative_window(x).any()


def test_calibration_shrinks_a_useless_correction_to_persistence() -> None:
    actual = RNG.standard_normal(5_000)
    heads = np.stack([np.full(5_000, -9.0), RNG.standard_normal(5_000), np.full(5_000, 9.0)], axis=1)  # median: noise
    assert forecast.Calibration.fit(heads, actual, np.ones(5_000)).shrink == 0.0


def test_calibration_keeps_a_correction_that_helps_and_covers_ninety_percent() -> None:
    signal = RNG.standard_normal(20_000)
    actual = signal + 0.5 * RNG.standard_normal(20_000)  # the next sample's change, in volatility units
    heads = np.stack([signal - 0.3, signal, signal + 0.3], axis=1)  # too narrow on purpose
    windows = np.tile([100.0, 101.0], 5)[None, :] * np.ones((20_000, 1))  # a zigzag: no trend to hold
    scale = forecast.window_scale(windows)
    fitted = forecast.Calibration.fit(heads[:10_000], actual[:10_000], scale[:10_000])
    assert fitted.shrink >= 0.9
    out = fitted.decode(windows[10_000:], heads[10_000:])
    truth = windows[10_000:, -1] + scale[10_000:] * actual[10_000:]
    coverage = np.mean((truth >= out["lower_bound_mbps"]) & (truth <= out["upper_bound_mbps"]))
    assert 0.88 <= coverage <= 0.92


def test_trend_windows_continue_their_trend() -> None:
    x, following = forecast.trend_windows(np.random.default_rng(2), 400, 10)
    step = x[:, -1] - x[:, -2]
    rising = step > 0.01 * x[:, -1]
    falling = step < -0.01 * x[:, -1]
    assert rising.any() and falling.any()
    assert (following[rising] > x[rising, -1]).all() and (following[falling] < x[falling, -1]).all()


def test_a_clean_trend_is_held_past_its_last_sample() -> None:
    windows = np.array([np.arange(1.0, 11.0), np.arange(10.0, 0.0, -1.0), [5.0, 6.0] * 5])
    held = forecast.hold_trend(windows, np.array([9.0, 2.0, 4.0]))
    assert held.tolist() == [10.0, 1.0, 4.0]  # rising held at 10, falling at 1, a zigzag untouched

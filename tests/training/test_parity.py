"""Parity judged on what matters: each output against its own scale, decisions identical but for ties."""

from __future__ import annotations

import numpy as np
import pytest

from training.parity import DEFAULT_TOLERANCE, Decision, ParityError, Score, check_parity, target_scale

RNG = np.random.default_rng(0)


def _mbps(rows: int = 200) -> tuple[np.ndarray, float, str]:
    native = RNG.lognormal(6, 1, rows)  # throughput in Mbps, up to thousands
    scale, source = target_scale(native)
    return native, scale, source


def test_a_regressor_is_judged_against_its_targets_spread_not_in_absolute_units() -> None:
    native, scale, source = _mbps()
    got = native + 0.03  # 0.03 Mbps: far above the old absolute 1e-4, immaterial next to a spread of ~hundreds
    check = check_parity([Score("predicted_throughput_mbps", native, got, scale, source)], [], DEFAULT_TOLERANCE)
    assert check.passed, check.failure
    assert check.outputs["predicted_throughput_mbps"]["max_diff_in_scales"] == pytest.approx(0.03 / scale)
    assert check.report.max_abs_diff == pytest.approx(0.03)


def test_a_failure_names_the_output_the_largest_difference_the_row_and_a_cause() -> None:
    native, scale, source = _mbps()
    got = native.copy()
    got[17] += 0.5 * scale
    check = check_parity(
        [Score("predicted_throughput_mbps", native, got, scale, source)],
        [],
        0.1,
        explain=lambda row: [f"feature rtt_ms is constant on the training split (row {row})"],
    )
    assert not check.passed
    assert check.failure.startswith(
        f"output 'predicted_throughput_mbps' differs from the native model by {0.5 * scale:.3g}"
    )
    assert (
        "on row 17 (0.5 x its scale" in check.failure
        and "median absolute deviation of the test targets" in check.failure
    )
    assert "likely cause: feature rtt_ms is constant on the training split (row 17)" in check.failure
    with pytest.raises(ParityError, match="row 17"):
        check.raise_for_failure()


def test_without_a_known_cause_the_message_says_what_to_do_and_nan_is_named() -> None:
    native = np.linspace(0, 1, 50)
    check = check_parity([Score("confidence", native, native + 1e-7)], [], 0.0)
    assert "float32 arithmetic" in check.failure and "--parity-tolerance" in check.failure
    got = native.copy()
    got[3] = np.nan
    check = check_parity([Score("confidence", native, got)], [], DEFAULT_TOLERANCE)
    assert "on row 3" in check.failure and "the ONNX output is not finite" in check.failure


def test_decisions_differ_only_at_ties_which_are_counted_apart() -> None:
    expected = np.array([True, False, True, False])
    got = np.array([True, True, True, False])
    tie = np.array([False, True, False, False])  # row 1's native score is at the threshold
    check = check_parity([], [Decision("is_anomaly", expected, got, tie)], DEFAULT_TOLERANCE)
    assert check.passed
    assert check.report.near_threshold_rows == 1 and not check.report.decisions_identical
    check = check_parity([], [Decision("is_anomaly", expected, got, ~tie)], DEFAULT_TOLERANCE)
    assert "output 'is_anomaly': the decision differs from the native model on 1 row(s)" in check.failure
    assert "first on row 1" in check.failure


def test_target_scale_falls_back_for_constant_targets() -> None:
    assert target_scale(np.array([1.0, 2.0, 3.0, 10.0]))[0] == pytest.approx(1.0)  # MAD
    assert target_scale(np.full(5, 40.0)) == (40.0, "mean |value| of the (constant) test targets")
    assert target_scale(np.zeros(5))[0] == 1.0

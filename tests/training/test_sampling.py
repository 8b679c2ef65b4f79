"""Real sampling: the interval is inferred, jittery stamps are snapped, gaps split series and are counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.sampling import infer_interval_s, segment_counts, snap_to_grid
from training.windows import make_windows, sort_by_group_time


def _snap(stamps: list[float], tolerance: float = 0.25) -> tuple[list[float], int, int, int]:
    result = snap_to_grid(np.asarray(stamps, dtype=float), np.zeros(len(stamps), dtype=int), tolerance)
    return result.seconds[result.keep].tolist(), result.rows_snapped, result.duplicates_dropped, result.off_grid_dropped


@pytest.mark.parametrize("interval", [1, 2, 60, 300, 3600])
def test_interval_is_inferred_through_jitter_and_gaps(interval: int) -> None:
    rng = np.random.default_rng(interval)
    slots = np.delete(np.arange(200), [50, 51, 52, 120])  # gaps must not pull the median
    stamps = 1_736_035_200 + slots * interval + rng.uniform(-0.2, 0.2, len(slots)) * interval
    assert infer_interval_s(stamps, np.zeros(len(stamps), dtype=int)) == interval


def test_repeated_then_skipped_second_goes_to_the_empty_slot() -> None:
    # A 1 s logger that writes second 2 twice and skips 3: both belong on the grid, nothing is lost.
    assert _snap([0, 1, 2, 2, 4, 5, 6]) == ([0, 1, 2, 3, 4, 5, 6], 1, 0, 0)
    # The other way round (3 written early as 2... or 2 late as 3): the first of the pair moves back.
    assert _snap([0, 1, 3, 3, 4, 5, 6]) == ([0, 1, 2, 3, 4, 5, 6], 1, 0, 0)


def test_two_stamps_in_one_slot_with_no_empty_neighbour_are_a_duplicate_keep_first() -> None:
    result = snap_to_grid(np.array([0, 1, 2, 2, 3, 4.0]), np.zeros(6, dtype=int))
    assert result.duplicates_dropped == 1
    assert result.keep.tolist() == [True, True, True, False, True, True]  # the first in the file is kept


def test_stamps_within_tolerance_are_snapped_beyond_are_dropped_and_counted() -> None:
    assert _snap([0, 61, 118, 180, 240]) == ([0, 60, 120, 180, 240], 2, 0, 0)
    stamps, snapped, duplicates, off = _snap([0, 60, 155, 180, 240])  # 155 is 42 % of an interval off 180
    assert stamps == [0, 60, 180, 240] and off == 1 and snapped == 0 and duplicates == 0
    assert _snap([0, 60, 155, 180, 240], tolerance=0.45) == ([0, 60, 120, 180, 240], 1, 0, 0)  # a wider tolerance


def test_an_uncommon_interval_is_kept_in_whole_seconds() -> None:
    assert infer_interval_s(np.arange(0, 4500, 45.0), np.zeros(100, dtype=int)) == 45


def test_fractional_stamps_snap_to_whole_seconds() -> None:
    stamps, snapped, _, _ = _snap([0.1, 1.05, 1.95, 3.1, 4.0, 5.02])
    assert stamps == [0, 1, 2, 3, 4, 5] and snapped == 5


def test_hourly_grid_stays_on_the_hour_despite_a_few_late_stamps() -> None:
    base = 1_736_035_200  # 2025-01-05T00:00:00Z
    stamps = base + np.arange(10) * 3600 + np.array([0, 3, -2, 0, 0, 0, 5, 0, 0, 0])
    snapped, count, _, _ = _snap(stamps.tolist())
    assert snapped == (base + np.arange(10) * 3600).tolist() and count == 3


def test_series_are_snapped_separately_with_their_own_phase() -> None:
    stamps = np.array([0, 60, 120, 30, 90, 150.0])  # link b samples half an interval after link a
    result = snap_to_grid(stamps, np.array([0, 0, 0, 1, 1, 1]))
    assert result.keep.all() and result.rows_snapped == 0
    assert result.seconds.tolist() == stamps.tolist()


def test_gaps_split_segments_and_the_windows_they_cost_are_counted() -> None:
    slots = np.r_[np.arange(4), np.arange(10, 23)]  # 4 samples, a gap, 13 samples
    counts = segment_counts(np.zeros(len(slots), dtype=int), slots, span=11)
    # Without the gap 17 samples give 7 windows of 11; the 13-sample segment gives 3.
    assert counts == {"segments": 2, "segments_too_short": 1, "windows_dropped_at_gaps": 4}


def test_windows_never_cross_a_gap_and_count_it() -> None:
    times = np.r_[np.arange(4), np.arange(10, 23)] * 3600.0  # hourly, with a 6-hour gap
    frame = sort_by_group_time(
        pd.DataFrame({"node_id": "a", "peer_id": "b", "epoch_time": times, "x": np.arange(len(times), dtype=float)}),
        ("node_id", "peer_id"),
    )
    windows = make_windows(frame, ("node_id", "peer_id"), ["x"], steps=10, interval_s=3600.0)
    assert len(windows.inputs) == 3
    assert windows.inputs[0, :, 0].tolist() == list(range(4, 14))  # starts after the gap
    assert windows.counts() == {
        "missing_value_windows": 0,
        "segments": 2,
        "segments_too_short": 1,
        "windows_dropped_at_gaps": 4,
    }

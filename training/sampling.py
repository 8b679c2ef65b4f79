"""Sampling of telemetry series: infer the interval, snap jittery stamps to the grid, count gaps and segments.

Rows of one series (a link, or a node) are meant to be one sample interval apart. Loggers write
jittery stamps, repeat a second and skip the next, or stop for a while. Here every series is put
on a regular grid: the interval is inferred, stamps within a tolerance of a grid slot are moved
onto it, two stamps in one slot keep the first (the later one is a duplicate, dropped and
counted), and a missing slot is a gap that splits the series into segments. Windows never cross
a gap (training.windows); segment_counts says how many windows the gaps cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_SNAP_TOLERANCE = 0.25  # share of the interval a stamp may be off its grid slot and still be snapped
MAX_OFF_GRID_SHARE = 0.05  # more rows than this off the grid is a validation problem, not a notice
# Logging intervals a jittery median is rounded to when it is within NICE_SHARE of one.
COMMON_INTERVALS_S = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 86400.0)
NICE_SHARE = 0.05
_REPAIR_PASSES = 4  # collision repairs per run of repeated stamps; a longer run keeps its duplicates


@dataclass(frozen=True)
class Sampling:
    """The grid a file's series were put on, and what that changed (arrays are per row, in file order)."""

    interval_s: float  # inferred sample interval (0 when no series has two samples)
    tolerance: float  # share of the interval a stamp may be off its slot
    seconds: np.ndarray  # float64 snapped stamp per row (the original where not snapped)
    slots: np.ndarray  # int64 grid slot per row (-1 where dropped or not placed)
    keep: np.ndarray  # bool per row: False for duplicates and rows off the grid
    rows_snapped: int  # rows whose stamp moved onto its grid slot
    duplicates_dropped: int  # second and later rows in one slot of one series (the first is kept)
    off_grid_dropped: int  # rows further than the tolerance from every slot
    off_grid: np.ndarray | None = None  # bool per row: further than the tolerance from every slot

    def counts(self) -> dict[str, float | int]:
        """The figures for validate's output, the training report and the manifest."""
        return {
            "sample_interval_s": self.interval_s,
            "snap_tolerance": self.tolerance,
            "rows_snapped": self.rows_snapped,
            "duplicates_dropped": self.duplicates_dropped,
            "off_grid_dropped": self.off_grid_dropped,
        }


def _sorted_by_series(seconds: np.ndarray, series: np.ndarray) -> np.ndarray:
    return np.lexsort((seconds, series))  # stable: equal stamps keep file order, so "first" is first in the file


def infer_interval_s(seconds: np.ndarray, series: np.ndarray) -> float:
    """The sample interval: median of positive time differences within each series, rounded sensibly.

    A median within 5 % of a common logging interval (1 s to 1 day) is that interval, so 1 min, 5 min
    or 1 h come out exactly through heavy jitter; else whole seconds (milliseconds below 1 s).
    Repeated stamps (differences of 0) are ignored. 0.0 when no series has two distinct stamps.
    """
    finite = np.isfinite(seconds)
    seconds, series = seconds[finite], series[finite]
    order = _sorted_by_series(seconds, series)
    t, s = seconds[order], series[order]
    diffs = np.diff(t)[s[1:] == s[:-1]]
    diffs = diffs[diffs > 0]
    if not diffs.size:
        return 0.0
    median = float(np.median(diffs))
    nice = min(COMMON_INTERVALS_S, key=lambda c: abs(c - median))
    if abs(nice - median) <= NICE_SHARE * nice:
        return nice
    return float(round(median)) if median >= 0.5 else round(median, 3)


def _phase(t: np.ndarray, s: np.ndarray, interval: float, n_series: int) -> np.ndarray:
    """Per series, where its grid starts within one interval.

    The circular mean of the stamps modulo the interval, moved to the median offset around it: a few
    late stamps then do not pull the grid of hourly data off the hour.
    """
    angle = 2 * np.pi * np.mod(t, interval) / interval
    sin = np.bincount(s, weights=np.sin(angle), minlength=n_series)
    cos = np.bincount(s, weights=np.cos(angle), minlength=n_series)
    mean = np.arctan2(sin, cos) * interval / (2 * np.pi)
    offset = np.mod(t - mean[s] + interval / 2, interval) - interval / 2  # in [-interval/2, interval/2)
    order = np.lexsort((offset, s))
    starts = np.searchsorted(s[order], np.arange(n_series))
    sizes = np.bincount(s, minlength=n_series)
    middle = offset[order][np.minimum(starts + (sizes - 1) // 2, len(t) - 1)]
    phase = mean + np.where(sizes > 0, middle, 0.0)
    # Whole seconds for intervals of a second or more, so snapped stamps are whole Unix seconds.
    phase = np.round(phase) if interval >= 1 else np.round(phase, 3)
    return np.asarray(np.mod(phase, interval))


def _repair_collisions(k: np.ndarray, s: np.ndarray) -> None:
    """Move a stamp of a repeated slot into an empty neighbouring slot (logger jitter), in place.

    A second stamp in a slot whose next slot is empty (the series skips it) moves forward; else, when
    the slot before the first stamp is empty, the first moves back. What stays in one slot is a duplicate.
    """
    n = len(k)
    for _ in range(_REPAIR_PASSES):
        same_prev = np.zeros(n, dtype=bool)
        same_prev[1:] = s[1:] == s[:-1]
        has_next = np.zeros(n, dtype=bool)
        has_next[:-1] = s[:-1] == s[1:]
        nxt = np.full(n, np.iinfo(np.int64).max)
        nxt[:-1] = k[1:]
        collide = same_prev & np.concatenate(([False], k[1:] == k[:-1]))
        forward = collide & has_next & (nxt > k + 1)
        k[forward] += 1
        collide &= ~forward
        first = np.flatnonzero(collide) - 1  # the earlier stamp of each remaining collision
        has_prev2 = (first >= 1) & (s[np.maximum(first - 1, 0)] == s[first])
        back = first[has_prev2 & (k[np.maximum(first - 1, 0)] < k[first] - 1)]
        k[back] -= 1
        if not forward.any() and not back.size:
            return


def snap_to_grid(seconds: np.ndarray, series: np.ndarray, tolerance: float = DEFAULT_SNAP_TOLERANCE) -> Sampling:
    """Put every series on a grid of the inferred interval (see the module docstring).

    `seconds` are the rows' stamps (Unix seconds, NaN where missing: left alone), `series` an integer
    series code per row. Rows are not reordered; `keep` marks the rows to use.
    """
    seconds = np.asarray(seconds, dtype=np.float64)
    series = np.asarray(series, dtype=np.int64)
    n = len(seconds)
    interval = infer_interval_s(seconds, series)
    out, slots, keep = seconds.copy(), np.full(n, -1, dtype=np.int64), np.ones(n, dtype=bool)
    if interval <= 0:
        return Sampling(interval, tolerance, out, slots, keep, 0, 0, 0)
    rows = np.flatnonzero(np.isfinite(seconds))
    order = rows[_sorted_by_series(seconds[rows], series[rows])]
    t, s = seconds[order], series[order]
    codes, s = np.unique(s, return_inverse=True)
    phase = _phase(t, s, interval, len(codes))[s]
    k = np.round((t - phase) / interval).astype(np.int64)
    on_grid = np.abs(t - (phase + k * interval)) <= tolerance * interval + 1e-9
    off = order[~on_grid]
    keep[off] = False
    order, s, k, phase = order[on_grid], s[on_grid], k[on_grid], phase[on_grid]
    _repair_collisions(k, s)
    duplicate = np.zeros(len(k), dtype=bool)
    duplicate[1:] = (s[1:] == s[:-1]) & (k[1:] <= k[:-1])
    keep[order[duplicate]] = False
    kept = order[~duplicate]
    snapped = phase[~duplicate] + k[~duplicate] * interval
    moved = np.abs(snapped - seconds[kept]) > 1e-9
    out[kept] = snapped
    slots[kept] = k[~duplicate]
    return Sampling(
        interval_s=interval,
        tolerance=tolerance,
        seconds=out,
        slots=slots,
        keep=keep,
        rows_snapped=int(moved.sum()),
        duplicates_dropped=int(duplicate.sum()),
        off_grid_dropped=int(off.size),
        off_grid=~keep & np.isin(np.arange(n), off),
    )


def segment_counts(series: np.ndarray, slots: np.ndarray, span: int) -> dict[str, int]:
    """Segments (runs of consecutive slots of one series), those shorter than `span`, and windows lost to gaps.

    Rows with slot -1 are ignored; (series, slot) pairs may repeat (several links of one node) and
    count once. `windows_dropped_at_gaps` is how many more windows of `span` samples there would be
    if each series had no gap: the windows a gap costs, counted rather than dropped silently.
    """
    placed = slots >= 0
    pairs = np.unique(np.stack([series[placed], slots[placed]], axis=1), axis=0) if placed.any() else np.zeros((0, 2))
    if not len(pairs):
        return {"segments": 0, "segments_too_short": 0, "windows_dropped_at_gaps": 0}
    s, k = pairs[:, 0], pairs[:, 1]
    new_series = np.concatenate(([True], s[1:] != s[:-1]))
    new_segment = new_series | np.concatenate(([True], np.diff(k) != 1))
    lengths = np.diff(np.append(np.flatnonzero(new_segment), len(k)))
    series_lengths = np.diff(np.append(np.flatnonzero(new_series), len(k)))
    possible = np.maximum(series_lengths - span + 1, 0).sum()
    inside = np.maximum(lengths - span + 1, 0).sum()
    return {
        "segments": int(len(lengths)),
        "segments_too_short": int((lengths < span).sum()),
        "windows_dropped_at_gaps": int(possible - inside),
    }

"""Sliding windows over per-group time series that never cross a group or a gap in time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from training.sampling import segment_counts


class WindowInputs:
    """The [n, steps, features] float32 inputs of n windows, made only for the windows indexed.

    Holding every window at once costs steps x features x 4 bytes per window (280 bytes for 10 steps of
    7 features, more than the row itself); this holds the rows once and the windows' first rows, and
    indexing (`inputs[rows]`, `inputs[a:b]`, `inputs[:, :, 0]`) builds the array of just those windows.
    np.asarray(inputs) builds them all.
    """

    def __init__(self, values: np.ndarray, starts: np.ndarray, steps: int) -> None:
        self.values = values  # [rows, features] float32, the sorted frame's feature columns
        self.starts = starts  # int64 first row of each window
        self.steps = steps

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(windows, steps, features), as the array would have."""
        return (len(self.starts), self.steps, self.values.shape[1])

    @property
    def dtype(self) -> np.dtype:
        """float32, the dtype of the array."""
        return self.values.dtype

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        first = self.starts[key]
        rows = first[..., None] + np.arange(self.steps)  # [..., steps]
        block = self.values[rows]
        if not rest:
            return block
        return block[rest] if np.ndim(first) == 0 else block[(slice(None), *rest)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        block = self[:]
        return block if dtype is None else block.astype(dtype)


@dataclass(frozen=True)
class Windows:
    """Windows of `steps` consecutive rows and the row that follows each (the target row).

    `inputs` is [n, steps, features] (a WindowInputs: built for the windows indexed); `target_rows`
    indexes the sorted frame the windows came from; `dropped_incomplete` counts windows left out because
    a value was missing, `gaps` the segments (runs without a gap), those too short for a window and the
    windows gaps cost (reported, not hidden).
    """

    inputs: WindowInputs
    target_rows: np.ndarray
    last_rows: np.ndarray
    frame: pd.DataFrame
    dropped_incomplete: int
    gaps: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Windows left out and why, for the report's split counts."""
        return {"missing_value_windows": self.dropped_incomplete} | self.gaps


def sort_by_group_time(frame: pd.DataFrame, group_columns: Sequence[str]) -> pd.DataFrame:
    """Rows ordered by group then time, with a fresh 0..n-1 index."""
    return frame.sort_values([*group_columns, "epoch_time"], kind="stable").reset_index(drop=True)


def make_windows(
    frame: pd.DataFrame,
    group_columns: Sequence[str],
    feature_columns: Sequence[str],
    steps: int,
    interval_s: float,
    with_target: bool = True,
) -> Windows:
    """Every run of `steps` consecutive samples of one group (plus the next sample when with_target).

    Consecutive means one `interval_s` apart: a window spanning a collector gap or two groups is skipped.
    `frame` must already be sorted by sort_by_group_time.
    """
    span = steps + 1 if with_target else steps
    n = len(frame)
    group_codes = frame.groupby(list(group_columns), sort=False).ngroup().to_numpy()
    times = frame["epoch_time"].to_numpy(dtype=np.float64)
    gaps = _gap_counts(group_codes, times, interval_s, span)
    if n < span:
        empty = np.zeros((0, len(feature_columns)), dtype=np.float32)
        none = np.zeros(0, np.int64)
        return Windows(WindowInputs(empty, none, steps), none, none, frame, 0, gaps)
    start = np.arange(n - span + 1)
    last = start + span - 1
    same_group = group_codes[start] == group_codes[last]
    contiguous = np.isclose(times[last] - times[start], (span - 1) * interval_s)
    valid = start[same_group & contiguous]
    values = frame[list(feature_columns)].to_numpy(dtype=np.float32)
    target_rows = valid + steps if with_target else valid + steps - 1
    # A window is complete when none of its rows has a missing value: counted with a running sum.
    finite_rows = np.isfinite(values).all(axis=1)
    missing_before = np.concatenate(([0], np.cumsum(~finite_rows)))
    complete = missing_before[valid + steps] == missing_before[valid]
    if with_target:
        complete &= finite_rows[target_rows]
    return Windows(
        inputs=WindowInputs(values, valid[complete], steps),
        target_rows=target_rows[complete],
        last_rows=(valid + steps - 1)[complete],
        frame=frame,
        dropped_incomplete=int((~complete).sum()),
        gaps=gaps,
    )


def _gap_counts(group_codes: np.ndarray, times: np.ndarray, interval_s: float, span: int) -> dict[str, int]:
    """segment_counts of a sorted frame: slots counted from each group's first stamp."""
    if not len(times) or interval_s <= 0:
        return {"segments": 0, "segments_too_short": 0, "windows_dropped_at_gaps": 0}
    first = np.r_[True, group_codes[1:] != group_codes[:-1]]
    origin = times[np.flatnonzero(first)][np.cumsum(first) - 1]
    slots = np.round((times - origin) / interval_s).astype(np.int64)
    return segment_counts(group_codes.astype(np.int64), slots, span)

"""Temporal train/validation/test split per link: the past trains, the future tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

TRAIN, VALIDATION, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "validation", "test")


def temporal_split(
    frame: pd.DataFrame, group_columns: Sequence[str], fractions: tuple[float, float] = (0.70, 0.85)
) -> np.ndarray:
    """Split label per row (TRAIN, VALIDATION, TEST) by time rank inside each group.

    The first 70 % of each group's rows in time are train, the next 15 % validation, the rest test
    (`fractions` are the cumulative cut points). Rows of one group never mix splits out of time order.
    """
    rank = frame.groupby(list(group_columns), sort=False)["epoch_time"].rank(method="first").to_numpy()
    size = frame.groupby(list(group_columns), sort=False)["epoch_time"].transform("size").to_numpy()
    position = (rank - 1) / np.maximum(size, 1)
    return np.where(position < fractions[0], TRAIN, np.where(position < fractions[1], VALIDATION, TEST)).astype(np.int8)


def split_counts(labels: np.ndarray) -> dict[str, int]:
    """Rows (or windows) per split, for reports."""
    return {name: int((labels == code).sum()) for code, name in enumerate(SPLIT_NAMES)}

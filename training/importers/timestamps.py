"""Source time columns (date-time text, Arrow timestamps or numeric epochs) to whole UTC seconds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from training.importers.errors import InputError
from training.importers.units import EPOCH_UNITS

# How many bad rows an error lists.
ROWS_SHOWN = 5


def _bad_rows(file: str, source: str, bad: np.ndarray, values: pd.Series, expected: str) -> InputError:
    rows = np.flatnonzero(bad)
    shown = ", ".join(f"{int(i) + 1} ({values.iat[int(i)]!r})" for i in rows[:ROWS_SHOWN])
    more = f" and {rows.size - ROWS_SHOWN} more" if rows.size > ROWS_SHOWN else ""
    return InputError(f"{file}: column '{source}': {rows.size} bad timestamp(s): rows {shown}{more}; {expected}")


def epoch_ns(array: pa.Array, unit: str | None, timezone: str, file: str, source: str) -> np.ndarray:
    """Nanoseconds since the Unix epoch (int64) for every row; InputError naming the bad rows.

    Text and timestamps without an offset are read in `timezone`; numbers are epochs in `unit` (s default).
    """
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        if unit is not None and unit not in EPOCH_UNITS:
            raise InputError(
                f"{file}: column '{source}': unknown unit '{unit}' for epoch times; known: {', '.join(EPOCH_UNITS)}"
            )
        numbers = pd.Series(array.to_pandas(), dtype="float64")
        bad = ~np.isfinite(numbers.to_numpy()) | (numbers.to_numpy() < 0)
        if bad.any():
            raise _bad_rows(file, source, bad, numbers, "expected epoch times >= 0")
        return np.asarray(np.floor(numbers.to_numpy() * EPOCH_UNITS[unit or "s"] * 1e9), dtype=np.int64)
    if unit is not None:
        raise InputError(f"{file}: column '{source}': --unit applies to numeric epoch times, not to date-time text")
    texts = pd.Series(array.to_pandas())
    try:
        if pa.types.is_timestamp(array.type):
            parsed = texts
        else:
            parsed = pd.to_datetime(texts.astype("string"), format="ISO8601", errors="coerce")
        if getattr(parsed.dt, "tz", None) is None:
            parsed = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    except (ValueError, TypeError, KeyError) as exc:
        # pandas refuses a column mixing stamps with and without offsets, or an unknown zone.
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{file}: column '{source}': timestamps cannot be read: {first}") from exc
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise _bad_rows(file, source, bad, texts, "expected ISO 8601 date-times, e.g. 2014-02-14 14:27:00")
    return np.asarray(parsed.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64"), dtype=np.int64)


def whole_seconds(ns: np.ndarray) -> tuple[np.ndarray, int]:
    """Epoch seconds (int64, floored) and how many stamps had a fractional second.

    epoch_time is whole seconds in the schema; the fraction is dropped rather than rounded so a
    row never moves into the next interval.
    """
    seconds = ns // 1_000_000_000
    return seconds, int(np.count_nonzero(ns - seconds * 1_000_000_000))

"""The individual column, time-order and incident checks behind training.validate."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from training.problems import ValidationReport
from training.schema import INCIDENT_FIELDS, INCIDENT_FIELDS_BY_NAME, MAX_MISSING_SHARE, Column

_UTC_SUFFIX = r"(Z|[+-]00:?00)$"


def _null_mask(array: pa.Array) -> np.ndarray:
    if pa.types.is_floating(array.type):
        return np.asarray(pc.is_null(array, nan_is_null=True).to_numpy(zero_copy_only=False))
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False))


def _as_float(array: pa.Array) -> np.ndarray:
    return np.asarray(array.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False))


def _unparseable_numbers(array: pa.Array, null: np.ndarray) -> np.ndarray:
    parsed = pd.to_numeric(pd.Series(array.cast(pa.string()).to_pandas()), errors="coerce").isna().to_numpy()
    return parsed & ~null


def check_column(array: pa.Array, col: Column, source: str, file: str, report: ValidationReport) -> None:
    """Missing share, type, range, percent-vs-ratio and category checks of one column."""
    null = _null_mask(array)
    missing = int(null.sum())
    if missing:
        share = missing / max(len(array), 1)
        if share > MAX_MISSING_SHARE:
            report.problem(
                file,
                source,
                f"{share:.1%} of values are missing",
                f"at most {MAX_MISSING_SHARE:.0%} missing values",
                mask=null,
            )
        else:
            rows = ", ".join(str(int(i) + 1) for i in np.flatnonzero(null)[:5])
            report.notice(file, source, f"{missing} missing value(s) kept as missing (rows {rows}...)")
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    kind, typ = col.kind, array.type
    if kind == "timestamp":
        _check_timestamp(array, null, source, file, report)
    elif kind in ("int", "float"):
        if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_null(typ):
            values = _as_float(array)
            if kind == "int" and pa.types.is_floating(typ):
                fractional = np.isfinite(values) & (values != np.round(values))
                if fractional.any():
                    report.problem(file, source, "values with a fractional part", col.expected(), mask=fractional)
                else:
                    report.notice(file, source, "stored as floating point; all values are whole numbers")
            _check_range(values, null, col, source, file, report)
        else:
            bad = (
                _unparseable_numbers(array, null) if pa.types.is_string(typ) or pa.types.is_large_string(typ) else ~null
            )
            report.problem(
                file,
                source,
                f"wrong type {typ}" + (" (values that are not numbers)" if bad.any() else ""),
                col.expected(),
                mask=bad if bad.any() else None,
            )
    elif kind == "category":
        if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
            report.problem(file, source, f"wrong type {typ}", col.expected(), mask=~null)
            return
        unknown = ~np.asarray(pc.is_in(array, value_set=pa.array(col.categories)).to_numpy(zero_copy_only=False))
        unknown &= ~null
        if unknown.any():
            seen = pc.unique(array.filter(pa.array(unknown))).to_pylist()[:5]
            report.problem(
                file, source, f"unknown categories {', '.join(map(repr, seen))}", col.expected(), mask=unknown
            )
    elif kind == "string":
        if pa.types.is_integer(typ):
            report.notice(file, source, "identifiers stored as integers; read as text")
        elif not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
            report.problem(file, source, f"wrong type {typ}", col.expected(), mask=~null)
        else:
            empty = np.asarray(pc.equal(array, "").fill_null(False).to_numpy(zero_copy_only=False))
            if empty.any():
                report.problem(file, source, "empty text", col.expected(), mask=empty)


def _check_range(
    values: np.ndarray, null: np.ndarray, col: Column, source: str, file: str, report: ValidationReport
) -> None:
    present = ~null
    nonfinite = present & ~np.isfinite(values)
    if nonfinite.any():
        report.problem(file, source, "infinite values", col.expected(), mask=nonfinite)
    with np.errstate(invalid="ignore"):
        low = np.zeros_like(present)
        if col.minimum is not None:
            low = values <= col.minimum if col.minimum_exclusive else values < col.minimum
        high = values > col.maximum if col.maximum is not None else np.zeros_like(present)
    bad = present & np.isfinite(values) & (low | high)
    if not bad.any():
        if col.name == "uptime_pct" and present.any() and np.nanmax(values[present]) <= 1.0:
            report.notice(file, source, "every value is <= 1: check this is a percentage (0-100), not a 0-1 ratio")
        return
    finite = values[present & np.isfinite(values)]
    if col.is_ratio and finite.size and finite.min() >= 0 and finite.max() <= 100:
        report.problem(
            file,
            source,
            f"values up to {finite.max():g} look like a percentage (0-100); rejected rather than guessed",
            f"{col.expected()}: divide by 100 before import",
            mask=bad,
        )
        return
    report.problem(
        file, source, f"values out of range (min {finite.min():g}, max {finite.max():g})", col.expected(), mask=bad
    )


def _check_timestamp(array: pa.Array, null: np.ndarray, source: str, file: str, report: ValidationReport) -> None:
    typ = array.type
    expected = "ISO 8601 UTC timestamp, e.g. 2026-01-05T00:00:00Z"
    if pa.types.is_timestamp(typ):
        if typ.tz is None:
            report.problem(file, source, "timestamps without a time zone", expected, mask=~null)
        elif typ.tz not in ("UTC", "Etc/UTC", "+00:00", "Z"):
            report.notice(file, source, f"time zone {typ.tz}; instants read as UTC")
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        no_utc = ~np.asarray(
            pc.match_substring_regex(array, _UTC_SUFFIX).fill_null(True).to_numpy(zero_copy_only=False)
        )
        parsed = pd.to_datetime(pd.Series(array.to_pandas()), utc=True, format="ISO8601", errors="coerce")
        bad = (parsed.isna().to_numpy() | no_utc) & ~null
        if bad.any():
            report.problem(file, source, "values that are not ISO 8601 UTC timestamps", expected, mask=bad)
    else:
        report.problem(file, source, f"wrong type {typ}", expected, mask=~null)


_UNIT_PER_S = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _epoch_seconds(array: pa.Array) -> np.ndarray | None:
    if pa.types.is_timestamp(array.type):
        # Through the integer count of the column's unit: casting ns to s refuses stamps with a fraction.
        counts = array.cast(pa.int64())
        seconds = np.asarray(counts.fill_null(0).to_numpy(zero_copy_only=False)) / _UNIT_PER_S[array.type.unit]
        seconds[np.asarray(counts.is_null().to_numpy(zero_copy_only=False))] = np.nan
        return seconds
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        parsed = pd.to_datetime(pd.Series(array.to_pandas()), utc=True, format="ISO8601", errors="coerce")
        ns = parsed.astype("datetime64[ns, UTC]").to_numpy(dtype="datetime64[ns]").astype("int64")
        out = ns / 1e9
        out[parsed.isna().to_numpy()] = np.nan
        return np.asarray(out)
    return None


def time_seconds(arrays: dict[str, pa.Array]) -> np.ndarray | None:
    """Each row's stamp in Unix seconds (float, NaN where unreadable): epoch_time, else timestamp."""
    epoch = arrays.get("epoch_time")
    if epoch is not None and (pa.types.is_integer(epoch.type) or pa.types.is_floating(epoch.type)):
        return _as_float(epoch)
    return _epoch_seconds(arrays["timestamp"]) if "timestamp" in arrays else None


def series_codes(arrays: dict[str, pa.Array], identity: tuple[str, ...] = ("node_id", "peer_id")) -> np.ndarray:
    """An integer code per row for its series: the combination of the `identity` columns present."""
    key = np.zeros(len(next(iter(arrays.values()))) if arrays else 0, dtype=np.int64)
    for name in identity:
        if name in arrays:
            codes = arrays[name].cast(pa.string()).dictionary_encode().indices.to_numpy(zero_copy_only=False)
            codes = np.asarray(codes, dtype=np.int64)
            key = key * (int(codes.max(initial=0)) + 1) + codes
    return key


def check_time_order(arrays: dict[str, pa.Array], file: str, report: ValidationReport) -> None:
    """Timestamps must not go backwards within a series (a link, or a node), and must agree with epoch_time."""
    epoch = arrays.get("epoch_time")
    seconds = None
    if epoch is not None and (pa.types.is_integer(epoch.type) or pa.types.is_floating(epoch.type)):
        seconds = _as_float(epoch)
    stamp = _epoch_seconds(arrays["timestamp"]) if "timestamp" in arrays else None
    if seconds is not None and stamp is not None:
        disagree = np.isfinite(seconds) & np.isfinite(stamp) & (np.abs(seconds - stamp) >= 1.0)
        if disagree.any():
            report.problem(
                file,
                "epoch_time",
                "epoch_time and timestamp disagree",
                "epoch_time == timestamp in Unix seconds",
                mask=disagree,
            )
    seconds = seconds if seconds is not None else stamp
    if seconds is None:
        return
    key = series_codes(arrays)
    order = np.argsort(key, kind="stable")
    t = seconds[order]
    same = key[order][1:] == key[order][:-1]
    back = same & (np.diff(t) < 0)
    if back.any():
        mask = np.zeros(len(t), dtype=bool)
        mask[order[1:][back]] = True
        report.problem(
            file,
            "timestamp",
            "timestamps go backwards within a (node_id, peer_id) link",
            "non-decreasing time within each link",
            mask=mask,
        )


def _parse_utc(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        return None
    return parsed


def check_incidents(records: list[Any], file: str, node_ids: set[str] | None, report: ValidationReport) -> None:
    """Field presence, types, categories, start < end and node matching of incident records."""
    found: dict[tuple[str | None, str, str], list[int]] = {}

    def flag(column: str | None, message: str, expected: str, number: int) -> None:
        found.setdefault((column, message, expected), []).append(number)

    extra: set[str] = set()
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            flag(None, "record is not a JSON object", "an object with " + ", ".join(INCIDENT_FIELDS_BY_NAME), number)
            continue
        extra.update(k for k in record if k not in INCIDENT_FIELDS_BY_NAME)
        times: dict[str, datetime] = {}
        for spec in INCIDENT_FIELDS:
            value = record.get(spec.name)
            if value is None:
                if spec.required:
                    flag(spec.name, "field is missing", spec.description, number)
                continue
            if spec.kind == "string" and not (isinstance(value, str) and value):
                flag(spec.name, "not a non-empty string", spec.description, number)
            elif spec.kind == "names" and not (
                isinstance(value, list) and all(isinstance(name, str) and name for name in value)
            ):
                flag(spec.name, "not a list of non-empty strings", spec.description, number)
            elif spec.kind == "category" and value not in spec.categories:
                flag(spec.name, "unknown category", "one of " + ", ".join(spec.categories), number)
            elif spec.kind == "timestamp":
                parsed = _parse_utc(value)
                if parsed is None:
                    flag(spec.name, "not an ISO 8601 UTC timestamp", "e.g. 2026-01-05T00:00:00Z", number)
                else:
                    times[spec.name] = parsed
        if "start" in times and "end" in times and times["end"] <= times["start"]:
            flag("end", "end is not after start", "end > start", number)
        node = record.get("node_id")
        if node_ids is not None and isinstance(node, str) and node and node not in node_ids:
            flag(
                "node_id",
                f"incident matches no node of the metrics (e.g. {node!r})",
                "a node_id present in the metrics file",
                number,
            )
        named = record.get("quorum_node_ids")
        if node_ids is not None and isinstance(named, list):
            unknown = [n for n in named if isinstance(n, str) and n and n not in node_ids]
            if unknown:
                flag(
                    "quorum_node_ids",
                    f"names a node with no metrics rows (e.g. {unknown[0]!r})",
                    "node_ids present in the metrics file",
                    number,
                )
    for (column, message, expected), numbers in found.items():
        report.problem(file, column, message, expected, rows=numbers, incident=True)
    if extra:
        report.notice(file, None, f"fields not in the schema are ignored: {', '.join(sorted(extra))}")

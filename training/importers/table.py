"""Importer (a): CSV or Parquet series of `timestamp, value` or named columns, mapped onto telemetry columns."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from training.importers.errors import InputError
from training.importers.mapping import Mapping, Plan, plan_for
from training.importers.output import Progress, Series, progress_to_stderr
from training.importers.timestamps import epoch_ns, whole_seconds

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def _source_columns(path: Path) -> list[str]:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return list(pacsv.open_csv(path).schema.names)
    if name.endswith(PARQUET_SUFFIXES):
        return list(pq.read_schema(path).names)
    raise InputError(f"{path}: unknown format: expected a .csv, .csv.gz, .parquet or .pq file")


def _read_columns(path: Path, columns: list[str]) -> pa.Table:
    """Only the columns the plan uses (CSV include_columns, Parquet column projection)."""
    if path.name.lower().endswith(CSV_SUFFIXES):
        options = pacsv.ConvertOptions(include_columns=columns, strings_can_be_null=True)
        return pacsv.read_csv(path, convert_options=options)
    return pq.read_table(path, columns=columns)


def columns_of(path: Path | str) -> tuple[list[str], Path]:
    """The column names of a CSV or Parquet file; InputError when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        return _source_columns(path), path
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: cannot be read: {str(exc).strip().splitlines()[0]}") from exc


def _values(table: pa.Table, source: str, scale: float, file: str, kind: str) -> np.ndarray:
    array = table.column(source).combine_chunks()
    if kind in ("category", "string"):
        return np.asarray(array.cast(pa.string()).to_pandas().to_numpy(dtype=object))
    if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_null(array.type)):
        numbers = pd.to_numeric(pd.Series(array.to_pandas()), errors="coerce")
        bad = numbers.isna().to_numpy() & ~np.asarray(array.is_null().to_numpy(zero_copy_only=False))
        rows = ", ".join(str(int(i) + 1) for i in np.flatnonzero(bad)[:5])
        raise InputError(f"{file}: column '{source}': values that are not numbers (type {array.type}); rows {rows}")
    values = np.asarray(array.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)) * scale
    # A whole-number integer column stays integer; anything else is left for validate to report.
    if kind == "int" and not np.isnan(values).any() and np.array_equal(values, np.round(values)):
        return values.astype(np.int64)
    return values


def series_from_table(path: Path, table: pa.Table, plan: Plan, mapping: Mapping) -> Series:
    """Turn the projected source table into telemetry rows following the plan."""
    file = str(path)
    ns = epoch_ns(
        table.column(plan.time_source).combine_chunks(), plan.time_unit, mapping.timezone, file, plan.time_source
    )
    seconds, fractional = whole_seconds(ns)
    frame = pd.DataFrame({"epoch_time": seconds})
    for name, source in plan.ids.items():
        ids = table.column(source).combine_chunks().cast(pa.string())
        if ids.null_count:
            first = int(np.flatnonzero(np.asarray(ids.is_null().to_numpy(zero_copy_only=False)))[0]) + 1
            raise InputError(f"{file}: column '{source}' ({name}): {ids.null_count} empty id(s), first at row {first}")
        frame[name] = np.asarray(ids.to_pandas().to_numpy(dtype=object))
    for name, value in plan.id_values.items():
        frame[name] = value
    if plan.id_values.get("peer_id") == "{node_id}":
        frame["peer_id"] = frame["node_id"]
    for source, (column, scale) in plan.values.items():
        frame[column.name] = _values(table, source, scale, file, column.kind)
    # Rows that go back in time within their series; the stable sort puts them in order.
    unordered = int((frame.groupby(["node_id", "peer_id"], sort=False)["epoch_time"].diff() < 0).sum())
    frame = frame.sort_values(["node_id", "peer_id", "epoch_time"], kind="stable", ignore_index=True)
    info: dict[str, object] = {"fractional_seconds_truncated": fractional}
    if unordered:
        info["rows_out_of_order_sorted"] = unordered
    return Series(file, frame, info)


def import_tables(
    paths: Sequence[Path | str], mapping: Mapping, progress: Progress | None = progress_to_stderr
) -> tuple[list[Series], dict[str, dict[str, str]]]:
    """Read each file (one series per file, or several named by an id column) and map it.

    Returns the series and the column description of the first file's plan for the manifest.
    """
    series: list[Series] = []
    described: dict[str, dict[str, str]] = {}
    for number, raw in enumerate(paths, start=1):
        started = time.perf_counter()
        columns, path = columns_of(raw)
        if not columns:
            raise InputError(f"{path}: no columns")
        plan = plan_for(columns, mapping, str(path))
        used = [plan.time_source, *plan.ids.values(), *plan.values]
        try:
            table = _read_columns(path, used)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: cannot be read: {str(exc).strip().splitlines()[0]}") from exc
        if table.num_rows == 0:
            raise InputError(f"{path}: no rows")
        one = series_from_table(path, table, plan, mapping)
        series.append(one)
        described = described or plan.describe()
        if plan.describe() != described:
            one.info["columns"] = plan.describe()  # this file was mapped differently from the first
        if progress:
            links = len(one.frame[["node_id", "peer_id"]].drop_duplicates())
            progress(
                f"import [{number}/{len(paths)}] {path}: {len(one.frame):,} rows, {links} series, "
                f"{time.perf_counter() - started:.2f} s"
            )
    return series, described

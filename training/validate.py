"""Validation of user telemetry and incidents against training.schema, reporting every problem."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from training import checks
from training.features import MODEL_DATA, Feature, select_features
from training.problems import MAX_ROWS_SHOWN, Notice, Problem, TelemetryValidationError, ValidationReport
from training.readiness import SERIES_COLUMNS, DataRequest, check_models, check_sampling, needed_columns
from training.sampling import Sampling
from training.schema import ALIASES, COLUMNS_BY_NAME
from training.telemetry_io import (
    TelemetryFileError,
    incidents_frame,
    is_parquet,
    parquet_rows,
    read_incident_records,
    read_metrics_columns,
    read_metrics_table,
    read_parquet_column,
)

# The report types live in training.problems (checks imports them too); validate re-exports them.
__all__ = [
    "MAX_ROWS_SHOWN",
    "DataRequest",
    "Notice",
    "Problem",
    "TelemetryData",
    "TelemetryValidationError",
    "ValidationReport",
    "load_validated_telemetry",
    "validate_files",
    "validate_incident_records",
    "validate_metrics_table",
]


def _map_columns(names: list[str], file: str, report: ValidationReport) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            report.problem(file, name, "column appears more than once", "each column once")
            continue
        seen.add(name)
        if name in COLUMNS_BY_NAME:
            report.column_map[name] = name
        elif name in ALIASES:
            alias = ALIASES[name]
            if alias.canonical in names:
                report.problem(
                    file,
                    name,
                    f"both '{name}' and its canonical name '{alias.canonical}' are present",
                    f"only '{alias.canonical}'",
                )
            else:
                report.column_map[name] = alias.canonical
                report.notice(file, name, f"alias of existing DWCP tooling, {alias.note}")
        else:
            report.problem(
                file,
                name,
                "unknown column",
                "only the columns of docs/telemetry-schema.md (aliases: " + ", ".join(ALIASES) + ")",
            )
    present = set(report.column_map.values())
    if not present & {"epoch_time", "timestamp"}:
        report.problem(
            file, "epoch_time", "no time column (neither epoch_time nor timestamp)", "epoch_time or timestamp"
        )


def validate_metrics_table(
    table: pa.Table,
    file: str,
    report: ValidationReport | None = None,
    request: DataRequest | None = None,
    incidents: bool = False,
) -> ValidationReport:
    """Check an Arrow table of link samples against the schema and `request`; returns the (updated) report.

    `incidents` says whether an incidents file comes with it (the reliability detector needs one).
    """
    report = report if report is not None else ValidationReport()
    columns = _Columns(table.column_names, table.num_rows, lambda name: table.column(name).combine_chunks())
    _validate_columns(columns, file, report, request or DataRequest(), incidents)
    return report


@dataclass
class _Columns:
    """A metrics file's column names and rows, and how to get one column as a single array."""

    names: list[str]
    rows: int
    read: Callable[[str], pa.Array]


def _validate_columns(
    columns: _Columns,
    file: str,
    report: ValidationReport,
    request: DataRequest,
    incidents: bool,
    only: set[str] | None = None,
    retain: bool = False,
) -> dict[str, pa.Array]:
    """Check the mapped columns one at a time; returns the checked arrays by canonical name.

    `only`: the canonical columns read and checked besides the series columns (None: every column);
    the others are not read. `retain`: return every checked array; else only the series columns are
    kept, so at most one other column is held at a time.
    """
    report.files.append(file)
    report.rows = columns.rows
    _map_columns(columns.names, file, report)
    arrays: dict[str, pa.Array] = {}
    for source, canonical in report.column_map.items():
        if only is not None and canonical not in only and canonical not in SERIES_COLUMNS:
            continue
        array = columns.read(source)
        checks.check_column(array, COLUMNS_BY_NAME[canonical], source, file, report)
        if retain or canonical in SERIES_COLUMNS:
            arrays[canonical] = array
    checks.check_time_order(arrays, file, report)
    if report.ok:  # the grid is inferred from readable, ordered stamps only
        check_sampling(arrays, file, report, request.snap_tolerance)
    check_models(arrays, file, report, request, incidents, set(report.column_map.values()))
    return arrays


def validate_incident_records(
    records: list[Any], file: str, node_ids: set[str] | None, report: ValidationReport
) -> None:
    """Check incident records (fields, types, categories, windows) and that each matches a metrics node."""
    report.files.append(file)
    report.incidents = len(records)
    checks.check_incidents(records, file, node_ids, report)


def validate_files(
    metrics_path: Path | str, incidents_path: Path | str | None = None, request: DataRequest | None = None
) -> ValidationReport:
    """Validate a metrics file and optionally an incidents file for `request`; never raises for a data problem.

    Every column is checked; a Parquet file is read one column at a time, so memory holds the series
    columns and one other column, never the whole table.
    """
    return _read_and_validate(metrics_path, incidents_path, request or DataRequest())[0]


def _open_columns(path: Path | str, only: set[str] | None) -> _Columns:
    """The file's columns, read when asked for: Parquet one column at a time, CSV parsed once.

    Of a CSV file only the columns whose canonical name is in `only` or a series column are parsed
    (None: all of them).
    """
    if is_parquet(path):
        rows = parquet_rows(path)
        return _Columns(read_metrics_columns(path), rows, lambda name: read_parquet_column(path, name))
    names = read_metrics_columns(path)
    projected = None
    if only is not None and len(set(names)) == len(names):  # include_columns cannot pick one of two equal names
        projected = [n for n in names if _canonical(n) in only or _canonical(n) in SERIES_COLUMNS]
    table = read_metrics_table(path, projected)
    return _Columns(names, table.num_rows, lambda name: table.column(name).combine_chunks())


def _read_and_validate(
    metrics_path: Path | str,
    incidents_path: Path | str | None,
    request: DataRequest,
    only: set[str] | None = None,
    retain: bool = False,
) -> tuple[ValidationReport, dict[str, pa.Array] | None, list[Any]]:
    """The validation report, the checked arrays (`only`, `retain`: see _validate_columns), the incident records.

    The arrays are None when the metrics file cannot be read, the records [] when the incidents cannot.
    """
    report = ValidationReport()
    records: list[Any] = []
    node_ids: set[str] | None = None
    arrays: dict[str, pa.Array] | None = None
    try:
        columns = _open_columns(metrics_path, only)
        incidents = incidents_path is not None
        arrays = _validate_columns(columns, str(metrics_path), report, request, incidents, only, retain)
    except TelemetryFileError as exc:
        if str(metrics_path) not in report.files:
            report.files.append(str(metrics_path))
        report.problem(exc.path, None, exc.reason, "a readable, non-empty CSV or Parquet file of link samples")
        arrays = None
    if arrays is not None and "node_id" in arrays:
        node_ids = {str(v) for v in arrays["node_id"].unique().to_pylist() if v is not None}
    if incidents_path is not None:
        try:
            records = read_incident_records(incidents_path)
        except TelemetryFileError as exc:
            report.files.append(str(incidents_path))
            report.problem(exc.path, None, exc.reason, "a JSON array of incident objects")
        else:
            validate_incident_records(records, str(incidents_path), node_ids, report)
            users = [m.model for m in report.models if MODEL_DATA[m.model].incidents != "unused"]
            if not users:
                report.notice(str(incidents_path), None, "no chosen model uses incidents; the file is not needed")
    return report, arrays, records


def _canonical(name: str) -> str:
    return name if name in COLUMNS_BY_NAME else ALIASES[name].canonical if name in ALIASES else name


@dataclass
class TelemetryData:
    """Validated telemetry on its sample grid: canonical column names, UTC timestamps, incidents as a DataFrame.

    Rows that were duplicates of a grid slot or off the grid are not in `metrics`; snapped rows carry
    their grid stamp in both epoch_time and timestamp (report.sampling counts them).
    """

    metrics: pd.DataFrame
    incidents: pd.DataFrame
    report: ValidationReport
    selected: dict[str, tuple[Feature, ...]] = field(default_factory=dict)

    @property
    def interval_s(self) -> float:
        """The sample interval inferred at validation (training.sampling.infer_interval_s)."""
        return self.report.sampling.interval_s if self.report.sampling is not None else 0.0

    def sampling_counts(self) -> dict[str, float | int]:
        """Interval, tolerance, rows snapped, duplicates and off-grid rows dropped, for reports."""
        return self.report.sampling.counts() if self.report.sampling is not None else {}

    def features(self, model: str) -> tuple[Feature, ...]:
        """The features `model` trains on: chosen at validation (--features, or the columns present)."""
        if model not in self.selected:
            self.selected[model] = select_features(model, set(self.metrics.columns))
        return self.selected[model]


def _on_grid(metrics: pd.DataFrame, sampling: Sampling | None) -> pd.DataFrame:
    """Both time columns, holding each row's grid stamp; rows the grid does not keep are left out."""
    if sampling is None:
        return metrics
    changed = sampling.rows_snapped or not sampling.keep.all()
    if changed:
        metrics = metrics[sampling.keep].reset_index(drop=True)
    seconds = sampling.seconds[sampling.keep]
    if changed or "epoch_time" not in metrics or metrics["epoch_time"].dtype.kind == "f":
        whole = sampling.interval_s >= 1 and bool(np.all(seconds == np.round(seconds)))
        metrics["epoch_time"] = seconds.astype(np.int64) if whole else seconds
    if changed or "timestamp" not in metrics:
        metrics["timestamp"] = pd.to_datetime(np.round(seconds * 1e9).astype(np.int64), utc=True)
    return metrics


def load_validated_telemetry(
    metrics_path: Path | str, incidents_path: Path | str | None = None, request: DataRequest | None = None
) -> TelemetryData:
    """Validate, then load: the entry point training calls. Raises TelemetryValidationError on any problem.

    Alias columns are renamed to their canonical names (their values are unchanged), text timestamps
    become pandas datetime64[ns, UTC], and every series is put on its sample grid (training.sampling):
    jittery stamps snapped, duplicates and off-grid rows dropped and counted. Nothing else is changed.
    """
    request = request or DataRequest()
    # Each file read once, and of the metrics only the columns the chosen models need.
    report, arrays, records = _read_and_validate(metrics_path, incidents_path, request, needed_columns(request), True)
    if not report.ok or arrays is None:
        raise TelemetryValidationError(report)
    table = pa.table(arrays)
    arrays.clear()
    # self_destruct frees each Arrow column once converted (the table is not used again).
    metrics = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()  # hand the freed Arrow buffers back rather than keep them pooled
    if "timestamp" in metrics:
        metrics["timestamp"] = pd.to_datetime(metrics["timestamp"], utc=True, format="ISO8601")
    metrics = _on_grid(metrics, report.sampling)
    for name in (c.name for c in COLUMNS_BY_NAME.values() if c.kind == "string"):
        if name in metrics and not _all_text(metrics[name]):
            metrics[name] = metrics[name].astype(str)
    columns = set(report.column_map.values())
    selected = {
        m.model: select_features(m.model, columns, request.features.get(m.model)) for m in report.models if m.can_train
    }
    return TelemetryData(metrics, incidents_frame(records), report, selected)


def _all_text(values: pd.Series) -> bool:
    """Whether astype(str) would change nothing: text without missing values (a copy of 10^7 rows saved)."""
    if isinstance(values.dtype, pd.StringDtype):
        return not values.isna().any()
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string"

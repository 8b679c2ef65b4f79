"""Validation of user telemetry and incidents against training.schema, reporting every problem."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from training import checks
from training.problems import MAX_ROWS_SHOWN, Notice, Problem, TelemetryValidationError, ValidationReport
from training.schema import ALIASES, COLUMNS_BY_NAME, REQUIRED_COLUMNS
from training.telemetry_io import (
    TelemetryFileError,
    incidents_frame,
    infer_interval_s,
    read_incident_records,
    read_metrics_table,
)

# The report types live in training.problems (checks imports them too); validate re-exports them.
__all__ = [
    "MAX_ROWS_SHOWN",
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


def _map_columns(table: pa.Table, file: str, report: ValidationReport) -> None:
    names = table.column_names
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
    for name in REQUIRED_COLUMNS:
        if name not in present:
            report.problem(file, name, "required column is missing", COLUMNS_BY_NAME[name].expected())


def validate_metrics_table(table: pa.Table, file: str, report: ValidationReport | None = None) -> ValidationReport:
    """Check an Arrow table of link samples against the schema; returns the (updated) report."""
    report = report if report is not None else ValidationReport()
    report.files.append(file)
    report.rows = table.num_rows
    _map_columns(table, file, report)
    arrays: dict[str, pa.Array] = {}
    for source, canonical in report.column_map.items():
        array = table.column(source).combine_chunks()
        arrays[canonical] = array
        checks.check_column(array, COLUMNS_BY_NAME[canonical], source, file, report)
    checks.check_time_order(arrays, file, report)
    return report


def validate_incident_records(
    records: list[Any], file: str, node_ids: set[str] | None, report: ValidationReport
) -> None:
    """Check incident records (fields, types, categories, windows) and that each matches a metrics node."""
    report.files.append(file)
    report.incidents = len(records)
    checks.check_incidents(records, file, node_ids, report)


def validate_files(metrics_path: Path | str, incidents_path: Path | str | None = None) -> ValidationReport:
    """Validate a metrics file and optionally an incidents file; never raises for a data problem."""
    return _read_and_validate(metrics_path, incidents_path)[0]


def _read_and_validate(
    metrics_path: Path | str, incidents_path: Path | str | None
) -> tuple[ValidationReport, pa.Table | None, list[Any]]:
    """The validation report, with the metrics table and incident records it read (None / [] if unreadable)."""
    report = ValidationReport()
    records: list[Any] = []
    node_ids: set[str] | None = None
    try:
        table = read_metrics_table(metrics_path)
    except TelemetryFileError as exc:
        report.files.append(str(metrics_path))
        report.problem(exc.path, None, exc.reason, "a readable, non-empty CSV or Parquet file of link samples")
        table = None
    if table is not None:
        validate_metrics_table(table, str(metrics_path), report)
        node_col = next((s for s, c in report.column_map.items() if c == "node_id"), None)
        if node_col is not None:
            node_ids = {str(v) for v in table.column(node_col).unique().to_pylist() if v is not None}
    if incidents_path is not None:
        try:
            records = read_incident_records(incidents_path)
        except TelemetryFileError as exc:
            report.files.append(str(incidents_path))
            report.problem(exc.path, None, exc.reason, "a JSON array of incident objects")
        else:
            validate_incident_records(records, str(incidents_path), node_ids, report)
    return report, table, records


@dataclass
class TelemetryData:
    """Validated telemetry: canonical column names, UTC timestamps, incidents as a DataFrame."""

    metrics: pd.DataFrame
    incidents: pd.DataFrame
    report: ValidationReport

    @cached_property
    def interval_s(self) -> float:
        """Median spacing of consecutive samples within a link, in seconds (it sorts every row: computed once)."""
        return infer_interval_s(self.metrics)


def load_validated_telemetry(metrics_path: Path | str, incidents_path: Path | str | None = None) -> TelemetryData:
    """Validate, then load: the entry point training calls. Raises TelemetryValidationError on any problem.

    Alias columns are renamed to their canonical names (their values are unchanged) and text
    timestamps become pandas datetime64[ns, UTC]. Nothing is dropped or coerced.
    """
    report, table, records = _read_and_validate(metrics_path, incidents_path)  # each file read once
    if not report.ok or table is None:
        raise TelemetryValidationError(report)
    table = table.rename_columns([report.column_map[n] for n in table.column_names])
    metrics = table.to_pandas()
    metrics["timestamp"] = pd.to_datetime(metrics["timestamp"], utc=True, format="ISO8601")
    for name in (c.name for c in COLUMNS_BY_NAME.values() if c.kind == "string"):
        metrics[name] = metrics[name].astype(str)
    return TelemetryData(metrics, incidents_frame(records), report)

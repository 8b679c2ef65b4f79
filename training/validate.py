"""Validation of user telemetry and incidents against training.schema, reporting every problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from training import checks
from training.schema import ALIASES, COLUMNS_BY_NAME, REQUIRED_COLUMNS
from training.telemetry_io import (
    TelemetryFileError,
    incidents_frame,
    infer_interval_s,
    read_incident_records,
    read_metrics_table,
)

# How many row numbers a problem lists.
MAX_ROWS_SHOWN = 5


@dataclass
class Problem:
    """One reason the data cannot be used as it is."""

    file: str
    column: str | None
    message: str
    expected: str
    rows: list[int] = field(default_factory=list)  # first few 1-based data rows (CSV line = row + 1)
    row_count: int = 0
    # "column" and "rows" for metrics; "field" and "records" for incidents.
    column_word: str = "column"
    row_word: str = "rows"

    def format(self) -> str:
        """One line: file, column, what is wrong, where, and what was expected."""
        where = f"{self.column_word} '{self.column}'" if self.column else "file"
        text = f"ERROR {self.file}: {where}: {self.message}"
        if self.rows:
            more = f" (and {self.row_count - len(self.rows)} more)" if self.row_count > len(self.rows) else ""
            text += f"; {self.row_word} {', '.join(map(str, self.rows))}{more}"
        return text + f"; expected {self.expected}"


@dataclass
class Notice:
    """Something accepted as it is but worth knowing (an alias, a few missing values)."""

    file: str
    column: str | None
    message: str

    def format(self) -> str:
        """One line naming file and column."""
        where = f"column '{self.column}'" if self.column else "file"
        return f"NOTICE {self.file}: {where}: {self.message}"


@dataclass
class ValidationReport:
    """Outcome of validating a metrics file (and optionally an incidents file)."""

    files: list[str] = field(default_factory=list)
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    # Name in the file -> canonical schema name, for every recognised column.
    column_map: dict[str, str] = field(default_factory=dict)
    incidents: int = 0

    @property
    def ok(self) -> bool:
        """True when there is no problem (notices do not count)."""
        return not self.problems

    def problem(
        self,
        file: str,
        column: str | None,
        message: str,
        expected: str,
        mask: np.ndarray | None = None,
        rows: list[int] | None = None,
        incident: bool = False,
    ) -> None:
        """Record a problem; `mask` marks offending rows (0-based), `rows` lists 1-based numbers directly."""
        if mask is not None:
            hits = np.flatnonzero(mask)
            rows, count = [int(i) + 1 for i in hits[:MAX_ROWS_SHOWN]], int(hits.size)
        else:
            rows = rows or []
            count = len(rows)
            rows = rows[:MAX_ROWS_SHOWN]
        words = ("field", "records") if incident else ("column", "rows")
        self.problems.append(Problem(file, column, message, expected, rows, count, *words))

    def notice(self, file: str, column: str | None, message: str) -> None:
        """Record a notice."""
        self.notices.append(Notice(file, column, message))

    def format(self) -> str:
        """Every problem and notice, one per line, then a summary line."""
        lines = [p.format() for p in self.problems] + [n.format() for n in self.notices]
        status = "OK" if self.ok else f"FAILED with {len(self.problems)} problem(s)"
        lines.append(
            f"{status}: {', '.join(self.files)}: {self.rows} rows, {self.incidents} incidents, "
            f"{len(self.notices)} notice(s)"
        )
        return "\n".join(lines)


class TelemetryValidationError(Exception):
    """Raised by load_validated_telemetry when the data has problems; carries the report."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.format())
        self.report = report


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

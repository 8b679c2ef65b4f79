"""What validation reports: problems, notices and the report that collects them (imported by checks and validate)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.sampling import Sampling

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
class ModelStatus:
    """Whether the file can train one model, on which features, and what its windows lose to gaps."""

    model: str
    features: tuple[str, ...]  # chosen feature names, in input order (empty when it cannot train)
    absent: tuple[str, ...]  # optional features not used: column absent, or not chosen with --features
    reasons: list[str] = field(default_factory=list)  # why it cannot train; empty when it can
    windows: dict[str, int] = field(default_factory=dict)  # segment_counts for windowed models
    window_span: int = 0

    @property
    def can_train(self) -> bool:
        """True when nothing stops the model from training on this file."""
        return not self.reasons

    def format(self) -> str:
        """One line: can or cannot train, features used and absent, window losses."""
        if not self.can_train:
            return f"MODEL {self.model}: cannot train: {'; '.join(self.reasons)}"
        text = f"MODEL {self.model}: can train; features: {', '.join(self.features)}"
        text += f"; optional features absent: {', '.join(self.absent) if self.absent else 'none'}"
        if self.windows:
            w = self.windows
            text += (
                f"; windows of {self.window_span} samples: {w['segments']} segment(s), "
                f"{w['segments_too_short']} too short for a window, {w['windows_dropped_at_gaps']} window(s) "
                "dropped at gaps"
            )
        return text


def sampling_line(file: str, sampling: Sampling) -> str:
    """One line of what putting the series on the sample grid did."""
    return (
        f"SAMPLING {file}: interval {sampling.interval_s:g} s; {sampling.rows_snapped} row(s) snapped to the grid "
        f"(within {sampling.tolerance:.0%} of the interval), {sampling.duplicates_dropped} duplicate row(s) "
        f"dropped (first kept), {sampling.off_grid_dropped} row(s) off the grid dropped"
    )


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
    sampling: Sampling | None = None  # the grid the metrics' series were put on (None when not reached)
    sampling_file: str = ""
    models: list[ModelStatus] = field(default_factory=list)

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
        if self.sampling is not None:
            lines.append(sampling_line(self.sampling_file, self.sampling))
        lines += [m.format() for m in self.models]
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

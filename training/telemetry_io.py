"""Reading telemetry (CSV or Parquet) and incident JSON, and joining incidents to rows by time window."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from training.schema import INCIDENT_FIELDS, INCIDENT_SEVERITIES


class TelemetryFileError(Exception):
    """A telemetry or incidents file is missing, unreadable, of an unknown format or empty."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def _check_file(path: Path) -> None:
    if not path.exists():
        raise TelemetryFileError(path, "file not found")
    if not path.is_file():
        raise TelemetryFileError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise TelemetryFileError(path, "file is empty")


def _read_error(path: Path, exc: BaseException) -> TelemetryFileError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TelemetryFileError(path, f"cannot be read: {first_line}")


_READ_ERRORS = (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError)


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise TelemetryFileError(path, "unknown format: expected a .csv, .csv.gz, .parquet or .pq file")


def read_metrics_columns(path: Path | str) -> list[str]:
    """The column names of a metrics file, in file order, without reading its rows (the CSV header line).

    Raises TelemetryFileError like read_metrics_table.
    """
    path = Path(path)
    _check_file(path)
    try:
        if _format(path) == "parquet":
            return list(pq.read_schema(path).names)
        # Only the first block is parsed; its inferred types are not used (read_metrics_table infers them).
        with pacsv.open_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True)) as reader:
            return list(reader.schema.names)
    except _READ_ERRORS as exc:
        raise _read_error(path, exc) from exc


def read_metrics_table(path: Path | str, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a metrics file (.csv, .csv.gz, .parquet, .pq) as an Arrow table, without changing any value.

    `columns` (names as in the file) projects the read: only those columns are parsed or decoded, in
    file order; None reads them all. CSV types are inferred by Arrow; empty cells are nulls. Raises
    TelemetryFileError for a missing, unreadable, unknown-format or empty file.
    """
    path = Path(path)
    _check_file(path)
    try:
        if _format(path) == "csv":
            wanted = None if columns is None else [n for n in read_metrics_columns(path) if n in set(columns)]
            options = pacsv.ConvertOptions(strings_can_be_null=True, include_columns=wanted)
            table = pacsv.read_csv(path, convert_options=options)
        else:
            table = pq.read_table(path, columns=None if columns is None else list(dict.fromkeys(columns)))
    except _READ_ERRORS as exc:
        raise _read_error(path, exc) from exc
    if table.num_rows == 0:
        raise TelemetryFileError(path, "file has a header but no rows")
    return table


def is_parquet(path: Path | str) -> bool:
    """Whether a metrics file is Parquet (whose columns can be read one at a time)."""
    return _format(Path(path)) == "parquet"


def parquet_rows(path: Path | str) -> int:
    """Rows of a Parquet metrics file, from its footer; raises TelemetryFileError when it has none."""
    path = Path(path)
    _check_file(path)
    try:
        rows = int(pq.ParquetFile(path).metadata.num_rows)
    except _READ_ERRORS as exc:
        raise _read_error(path, exc) from exc
    if rows == 0:
        raise TelemetryFileError(path, "file has a header but no rows")
    return rows


def read_parquet_column(path: Path | str, name: str) -> pa.Array:
    """One column of a Parquet metrics file as a single Arrow array: only that column is decoded."""
    path = Path(path)
    try:
        return pq.read_table(path, columns=[name]).column(0).combine_chunks()
    except _READ_ERRORS as exc:
        raise _read_error(path, exc) from exc


def read_incident_records(path: Path | str) -> list[Any]:
    """Read an incidents JSON file: a JSON array of objects (see docs/telemetry-schema.md).

    Returns the raw records; their fields are checked by training.validate. Raises TelemetryFileError
    when the file is missing, empty, not JSON or not an array.
    """
    path = Path(path)
    _check_file(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TelemetryFileError(path, f"cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise TelemetryFileError(path, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    if not isinstance(data, list):
        raise TelemetryFileError(path, f"expected a JSON array of incident objects, got a JSON {type(data).__name__}")
    return data


def incidents_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Turn validated incident records into a DataFrame with UTC datetime start/end columns."""
    frame = pd.DataFrame.from_records(records, columns=[f.name for f in INCIDENT_FIELDS])
    for field in (f.name for f in INCIDENT_FIELDS if f.kind == "timestamp"):
        frame[field] = pd.to_datetime(frame[field], utc=True, format="ISO8601")
    return frame


def _epoch_s(values: pd.Series) -> np.ndarray:
    """UTC datetimes as float seconds since the epoch."""
    return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64").to_numpy() / 1e9


def infer_interval_s(metrics: pd.DataFrame) -> float:
    """The sample interval of a metrics frame: training.sampling.infer_interval_s over its links."""
    from training.sampling import infer_interval_s as infer

    keys = [c for c in ("node_id", "peer_id") if c in metrics]
    series = metrics.groupby(keys, sort=False).ngroup().to_numpy() if keys else np.zeros(len(metrics), np.int64)
    return infer(metrics["epoch_time"].to_numpy(dtype=np.float64), series)


def label_rows_with_incidents(
    metrics: pd.DataFrame, incidents: pd.DataFrame | list[dict[str, Any]], interval_s: float | None = None
) -> pd.DataFrame:
    """Mark the rows whose node and sample interval overlap an incident window.

    A row covers [epoch_time, epoch_time + interval_s); it is labelled when its node_id equals the
    incident's node_id and the interval overlaps [start, end). This is a window join, never an exact
    timestamp match. interval_s defaults to the median sample spacing. Where incidents overlap, the
    most severe one (then the earliest) labels the row.

    Returns a DataFrame aligned with `metrics` (same index) with columns incident (bool),
    incident_type, incident_severity and incident_id (missing, NA, where no incident).
    """
    frame = incidents if isinstance(incidents, pd.DataFrame) else incidents_frame(list(incidents))
    if interval_s is None:
        interval_s = infer_interval_s(metrics)
    n = len(metrics)
    label_idx = np.full(n, -1, dtype=np.int64)
    if len(frame) and n:
        rank = {s: i for i, s in enumerate(INCIDENT_SEVERITIES)}
        order = sorted(
            range(len(frame)),
            key=lambda i: (rank.get(str(frame["severity"].iat[i]), -1), -frame["start"].iat[i].timestamp()),
        )
        node_codes, node_names = pd.factorize(metrics["node_id"].astype(str))
        row_start_s = metrics["epoch_time"].to_numpy(dtype=np.float64)
        by_node = np.argsort(node_codes, kind="stable")
        bounds = np.searchsorted(node_codes[by_node], np.arange(len(node_names) + 1))
        lookup = {name: k for k, name in enumerate(node_names)}
        start_s = _epoch_s(frame["start"])
        end_s = _epoch_s(frame["end"])
        # Least severe first, so the most severe incident is written last and wins.
        for i in order:
            k = lookup.get(str(frame["node_id"].iat[i]))
            if k is None:
                continue
            rows = by_node[bounds[k] : bounds[k + 1]]
            t0 = row_start_s[rows]
            hit = (t0 < end_s[i]) & (t0 + interval_s > start_s[i])
            label_idx[rows[hit]] = i
    labelled = label_idx >= 0
    safe = np.where(labelled, label_idx, 0)

    def pick(col: str) -> np.ndarray:
        if not len(frame):
            return np.full(n, None, dtype=object)
        values = frame[col].astype(object).to_numpy()[safe]
        return np.asarray(np.where(labelled, values, None))

    return pd.DataFrame(
        {
            "incident": labelled,
            "incident_type": pick("incident_type"),
            "incident_severity": pick("severity"),
            "incident_id": pick("incident_id"),
        },
        index=metrics.index,
    )

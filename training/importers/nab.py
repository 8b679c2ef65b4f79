"""Importer (c): NAB-style labelled series (timestamp,value files plus anomaly windows) to telemetry and incidents."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from training.importers.errors import InputError
from training.importers.mapping import Mapping
from training.importers.output import Progress, Series, progress_to_stderr
from training.importers.table import import_tables
from training.importers.timestamps import epoch_ns
from training.schema import INCIDENT_SEVERITIES, INCIDENT_TYPES

# NAB's value becomes this column unless the user maps it elsewhere.
DEFAULT_COLUMNS = {"value": "consensus_latency_ms"}


def read_windows(path: Path) -> dict[str, list[list[str]]]:
    """NAB's labels JSON: {"<path relative to the data root>.csv": [[start, end], ...]}."""
    if not path.is_file():
        raise InputError(f"{path}: labels file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON file: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object of file -> [[start, end], ...], got a {type(data).__name__}")
    for key, windows in data.items():
        ok = isinstance(windows, list) and all(
            isinstance(w, list) and len(w) == 2 and all(isinstance(t, str) for t in w) for w in windows
        )
        if not ok:
            raise InputError(f"{path}: entry '{key}': expected a list of [start, end] date-time pairs")
    return data


def _relative(data_root: Path, name: str) -> str:
    path = Path(name)
    if path.is_absolute():
        try:
            return path.relative_to(data_root).as_posix()
        except ValueError as exc:
            raise InputError(f"{name}: not under the data root {data_root}") from exc
    return path.as_posix()


def window_incidents(
    key: str,
    windows: list[list[str]],
    node_id: str,
    interval_s: float,
    timezone: str,
    incident_type: str,
    severity: str,
    labels: str,
) -> list[dict[str, Any]]:
    """One incident per window on the series' node.

    NAB windows include their end stamp; an incident's end is exclusive, so it is the window's end
    plus one sample interval of the series, which labels the row stamped at the window's end.
    """
    if not windows:
        return []
    flat = pa.array([t for w in windows for t in w], pa.string())
    ns = epoch_ns(flat, None, timezone, f"{labels} ('{key}')", "window")
    start_ns, end_ns = ns[0::2], ns[1::2] + int(interval_s * 1e9)
    out = []
    for k, (s, e) in enumerate(zip(start_ns, end_ns, strict=True), start=1):
        if e <= s:
            raise InputError(f"{labels}: '{key}' window {k}: end {windows[k - 1][1]} is before its start")
        out.append(
            {
                "incident_id": f"{node_id}-w{k}",
                "node_id": node_id,
                "incident_type": incident_type,
                "severity": severity,
                "start": pd.Timestamp(int(s), tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": pd.Timestamp(int(e), tz="UTC").ceil("s").strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return out


def import_nab(
    data_root: Path,
    labels_path: Path,
    files: Sequence[str],
    mapping: Mapping,
    incident_type: str = "degradation",
    severity: str = "medium",
    progress: Progress | None = progress_to_stderr,
) -> tuple[list[Series], list[dict[str, Any]], dict[str, dict[str, str]]]:
    """Series of the chosen files (default: every file the labels name) and one incident per window.

    A labels entry whose file is missing under the data root, and a chosen file the labels do not
    name, are errors: either would silently change what counts as an anomaly.
    """
    if incident_type not in INCIDENT_TYPES:
        raise InputError(f"--incident-type {incident_type!r}: unknown; known: {', '.join(INCIDENT_TYPES)}")
    if severity not in INCIDENT_SEVERITIES:
        raise InputError(f"--severity {severity!r}: unknown; known: {', '.join(INCIDENT_SEVERITIES)}")
    if not data_root.is_dir():
        raise InputError(f"{data_root}: data root is not a directory")
    windows = read_windows(labels_path)
    keys = [_relative(data_root, f) for f in files] if files else sorted(windows)
    for key in keys:
        if key not in windows:
            raise InputError(f"{key}: not named in {labels_path}; its entries look like '{next(iter(windows), '')}'")
        if not (data_root / key).is_file():
            raise InputError(f"{labels_path} names '{key}', which is not a file under {data_root}")
    series, described = import_tables([data_root / k for k in keys], mapping, progress)
    incidents: list[dict[str, Any]] = []
    for key, one in zip(keys, series, strict=True):
        nodes = one.frame["node_id"].unique()
        if len(nodes) != 1:
            raise InputError(f"{key}: a labelled file must be one node's series, found {len(nodes)} node ids")
        steps = np.diff(one.frame["epoch_time"].to_numpy())
        interval_s = float(np.median(steps[steps > 0])) if (steps > 0).any() else 1.0
        found = window_incidents(
            key, windows[key], str(nodes[0]), interval_s, mapping.timezone, incident_type, severity, str(labels_path)
        )
        one.info |= {"labels_key": key, "windows": len(found)}
        incidents.extend(found)
    return series, incidents, described

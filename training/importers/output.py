"""Writing imported series as one Parquet telemetry file, with a manifest of what was imported beside it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from training.importers.errors import InputError
from training.schema import COLUMNS

MANIFEST_SUFFIX = ".import.json"
INCIDENTS_SUFFIX = ".incidents.json"


def progress_to_stderr(line: str) -> None:
    """The default progress sink: one line per file on stderr."""
    print(line, file=sys.stderr, flush=True)


Progress = Callable[[str], None]


@dataclass
class Series:
    """One imported series: its rows (epoch seconds, ids, telemetry columns) and what the manifest says."""

    source: str
    frame: pd.DataFrame  # epoch_time, node_id, peer_id and the imported telemetry columns
    info: dict[str, Any] = field(default_factory=dict)


def sidecar(out: Path, suffix: str) -> Path:
    """`telemetry.parquet` -> `telemetry<suffix>` in the same directory."""
    return out.with_name(out.name.removesuffix(".parquet").removesuffix(".pq") + suffix)


def series_summary(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (node_id, peer_id): rows, first and last UTC stamp and median spacing in seconds."""
    out = []
    for (node, peer), rows in frame.groupby(["node_id", "peer_id"], sort=True):
        t = rows["epoch_time"].to_numpy()
        steps = np.diff(t)
        out.append(
            {
                "node_id": node,
                "peer_id": peer,
                "rows": len(rows),
                "first_utc": _utc(int(t.min())),
                "last_utc": _utc(int(t.max())),
                "median_interval_s": float(np.median(steps)) if steps.size else None,
            }
        )
    return out


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_distinct_links(series: list[Series]) -> None:
    """Two files must not write the same link: their rows would interleave into one series."""
    owner: dict[tuple[str, str], str] = {}
    for s in series:
        for node, peer in s.frame[["node_id", "peer_id"]].drop_duplicates().itertuples(index=False):
            other = owner.setdefault((node, peer), s.source)
            if other != s.source:
                raise InputError(
                    f"{other} and {s.source} are both link ({node}, {peer}); "
                    "give each file its own ids, e.g. --peer-id '{name}'"
                )


def telemetry_table(series: list[Series]) -> pa.Table:
    """All series as one table: timestamp, epoch_time, node_id, peer_id, then the columns in schema order.

    Only columns some series has are written; a column one series lacks is missing (null) in its rows.
    Rows are ordered by link, then time.
    """
    _check_distinct_links(series)
    frame = pd.concat([s.frame for s in series], ignore_index=True)
    frame = frame.sort_values(["node_id", "peer_id", "epoch_time"], kind="stable", ignore_index=True)
    names = ["epoch_time", "node_id", "peer_id"] + [c.name for c in COLUMNS if c.name in frame.columns]
    names = list(dict.fromkeys(n for n in names if n != "timestamp"))
    arrays = {"timestamp": pa.array(frame["epoch_time"].to_numpy(np.int64), pa.int64()).cast(pa.timestamp("s", "UTC"))}
    for name in names:
        arrays[name] = pa.array(frame[name].to_numpy(), from_pandas=True)
    return pa.table(arrays)


def write_outputs(
    out: Path,
    series: list[Series],
    manifest: dict[str, Any],
    incidents: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write the Parquet telemetry, the incidents (if any) and the manifest; returns the manifest."""
    if not series:
        raise InputError("nothing to import: no input file")
    table = telemetry_table(series)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    frame = table.select(["epoch_time", "node_id", "peer_id"]).to_pandas()
    manifest = {
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **manifest,
        "output": str(out),
        "rows": table.num_rows,
        "columns_written": table.column_names,
        "files": [{"source": s.source, "rows": len(s.frame), **s.info} for s in series],
        "series": series_summary(frame),
    }
    if incidents is not None:
        incidents_path = sidecar(out, INCIDENTS_SUFFIX)
        incidents_path.write_text(json.dumps(incidents, indent=1) + "\n")
        manifest["incidents"] = {"output": str(incidents_path), "count": len(incidents)}
    sidecar(out, MANIFEST_SUFFIX).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest

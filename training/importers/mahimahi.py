"""Importer (b): mahimahi packet-delivery traces into per-interval throughput_mbps, one link per trace."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from training.importers.errors import InputError
from training.importers.mapping import fill_id
from training.importers.output import Progress, Series, progress_to_stderr

# A mahimahi trace line is one delivery opportunity for one MTU-sized packet.
PACKET_BYTES = 1500


def read_trace(path: Path) -> np.ndarray:
    """The millisecond stamps of a trace (int64, one per line); InputError naming a bad line."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty trace (0 bytes)")
    options = pacsv.ReadOptions(column_names=["ms"])
    convert = pacsv.ConvertOptions(column_types={"ms": pa.string()})
    try:
        text = pacsv.read_csv(path, read_options=options, convert_options=convert).column("ms").combine_chunks()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: cannot be read as a mahimahi trace: {str(exc).strip().splitlines()[0]}") from exc
    if len(text) == 0:
        raise InputError(f"{path}: empty trace")
    stripped = pc.utf8_trim_whitespace(text)
    whole = np.asarray(pc.match_substring_regex(stripped, r"^[0-9]+$").fill_null(False).to_numpy(zero_copy_only=False))
    if not whole.all():
        lines = np.flatnonzero(~whole)
        shown = ", ".join(f"{int(i) + 1} ({text[int(i)].as_py()!r})" for i in lines[:5])
        raise InputError(
            f"{path}: {lines.size} line(s) are not a whole millisecond stamp >= 0: lines {shown}; "
            "a mahimahi trace has one integer per line"
        )
    ms = np.asarray(stripped.cast(pa.int64()).to_numpy(zero_copy_only=False))
    back = np.flatnonzero(np.diff(ms) < 0)
    if back.size:
        line = int(back[0]) + 2
        raise InputError(
            f"{path}: line {line}: stamp {ms[line - 1]} ms is before the previous line's {ms[line - 2]} ms; "
            "mahimahi stamps never go back"
        )
    return ms


def throughput_mbps(ms: np.ndarray, interval_s: int, packet_bytes: int = PACKET_BYTES) -> tuple[np.ndarray, bool]:
    """Mbps delivered in each interval from 0 to the last complete one, and whether a partial bin was dropped.

    A bin with no delivery is 0 Mbps: the link delivered nothing then. The trace ends at its last stamp,
    so the bin holding it is complete only when that stamp is the bin's last millisecond.
    """
    interval_ms = interval_s * 1000
    packets = np.bincount(ms // interval_ms)
    complete = (int(ms[-1]) + 1) % interval_ms == 0
    if not complete:
        packets = packets[:-1]
    return packets * (packet_bytes * 8 / 1e6 / interval_s), not complete


def import_traces(
    paths: Sequence[Path | str],
    node_id: str,
    peer_id: str,
    interval_s: int = 1,
    start_epoch_s: int = 0,
    packet_bytes: int = PACKET_BYTES,
    progress: Progress | None = progress_to_stderr,
) -> list[Series]:
    """One series per trace file: link (node_id, peer_id) with throughput_mbps per interval."""
    if interval_s < 1:
        raise InputError(f"--interval-s {interval_s}: must be a whole number of seconds >= 1")
    series = []
    for number, raw in enumerate(paths, start=1):
        started = time.perf_counter()
        path = Path(raw)
        ms = read_trace(path)
        mbps, dropped = throughput_mbps(ms, interval_s, packet_bytes)
        if mbps.size == 0:
            raise InputError(f"{path}: the trace is shorter than one {interval_s} s interval")
        node = fill_id(node_id, path)
        frame = pd.DataFrame(
            {
                "epoch_time": start_epoch_s + interval_s * np.arange(mbps.size, dtype=np.int64),
                "node_id": node,
                "peer_id": node if peer_id == "{node_id}" else fill_id(peer_id, path),
                "throughput_mbps": mbps,
            }
        )
        info = {"deliveries": int(ms.size), "trace_ms": int(ms[-1]) + 1, "partial_last_interval_dropped": dropped}
        series.append(Series(str(path), frame, info))
        if progress:
            progress(
                f"import [{number}/{len(paths)}] {path}: {ms.size:,} deliveries -> {mbps.size:,} rows "
                f"of {interval_s} s, {time.perf_counter() - started:.2f} s"
            )
    return series

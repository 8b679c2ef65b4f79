"""Writes a generated dataset in chunks: train/test metrics as Parquet and CSV, incidents JSON, dataset.json."""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from training.datagen.config import DatagenConfig
from training.datagen.simulate import TelemetrySimulator

FORMATS = ("parquet", "csv")
# File names inside the output directory (documented in docs/telemetry-schema.md).
TRAIN_STEM, TEST_STEM = "metrics_train", "metrics_test"
INCIDENT_FILES = {"train": "incidents_train.json", "test": "incidents_test.json"}
DATASET_FILE = "dataset.json"


def csv_ready(table: pa.Table) -> pa.Table:
    """The table with its timestamp column as ISO 8601 text ending in Z (2026-01-05T00:00:00Z)."""
    seconds = table.column("epoch_time").to_numpy()
    unique, inverse = np.unique(seconds, return_inverse=True)
    text = pa.array(np.datetime_as_string(unique.astype("datetime64[s]"), unit="s", timezone="UTC").tolist())
    index = table.column_names.index("timestamp")
    return table.set_column(index, "timestamp", text.take(pa.array(inverse)))


def plain_text(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded to plain text.

    Arrow's Parquet writer does not give byte-identical files for dictionary-typed input; plain text
    columns are dictionary-encoded by the writer itself, deterministically.
    """
    for i, column in enumerate(table.schema):
        if pa.types.is_dictionary(column.type):
            table = table.set_column(i, column.name, table.column(i).cast(pa.string()))
    return table


@dataclass
class _Split:
    """Open writers and counters of one split (train or test)."""

    name: str
    rows: int = 0
    writers: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)


def _progress_printer(stream: TextIO, total_rows: int) -> Callable[[int], None]:
    started = time.perf_counter()

    def report(done_rows: int) -> None:
        elapsed = time.perf_counter() - started
        rate = done_rows / elapsed if elapsed > 0 else 0.0
        stream.write(
            f"\rdatagen: {done_rows:,}/{total_rows:,} rows ({100 * done_rows / total_rows:.0f} %), "
            f"{rate:,.0f} rows/s, {elapsed:.1f} s"
        )
        if done_rows >= total_rows:
            stream.write("\n")
        stream.flush()

    return report


def write_dataset(
    config: DatagenConfig, out_dir: Path | str, formats: Sequence[str] = FORMATS, progress: bool = True
) -> dict[str, Any]:
    """Generate the dataset chunk by chunk and write it to out_dir; returns the dataset.json content.

    Memory is bounded by config.chunk_rows, whatever the total size. Files are written under a
    temporary name and renamed when complete. The same config gives byte-identical files.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ValueError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = TelemetrySimulator(config)
    total_rows = config.n_steps * sim.topo.n_links
    report = _progress_printer(sys.stderr, total_rows) if progress else None
    splits = {"train": _Split(TRAIN_STEM), "test": _Split(TEST_STEM)}
    train_end_s = config.start_epoch_s + config.n_train_steps * config.interval_s
    done = 0
    try:
        for table in _generate_ahead(sim):
            split = splits["train" if table.column("epoch_time")[0].as_py() < train_end_s else "test"]
            _write_chunk(out, split, table, formats)
            done += table.num_rows
            if report:
                report(done)
    finally:
        for split in splits.values():
            for writer in split.writers.values():
                writer.close()
    for split in splits.values():
        for tmp in split.paths.values():
            os.replace(tmp, tmp.with_name(tmp.name[1:-4]))
    return _write_side_files(config, sim, out, splits, formats, train_end_s)


def _generate_ahead(sim: TelemetrySimulator, depth: int = 2) -> Iterator[pa.Table]:
    """Chunks generated in a background thread while the caller writes the previous ones.

    NumPy and Arrow release the GIL in their heavy loops, so generation and compression/CSV
    formatting overlap on two cores; at most `depth` chunks wait in memory.
    """
    chunks: queue.Queue[pa.Table | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: pa.Table | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for _, table in sim.iter_tables():
                if not put(table):
                    return
            put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    worker = threading.Thread(target=produce, name="datagen-producer", daemon=True)
    worker.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _write_chunk(out: Path, split: _Split, table: pa.Table, formats: Sequence[str]) -> None:
    if not split.writers:
        if "parquet" in formats:
            split.paths["parquet"] = out / f".{split.name}.parquet.tmp"
            split.writers["parquet"] = pq.ParquetWriter(
                split.paths["parquet"],
                plain_text(table.slice(0, 1)).schema,
                compression="zstd",
                use_dictionary=[f.name for f in table.schema if pa.types.is_dictionary(f.type)],  # text columns
                write_statistics=["timestamp", "epoch_time", "node_id", "peer_id"],
            )
        if "csv" in formats:
            split.paths["csv"] = out / f".{split.name}.csv.tmp"
            split.writers["csv"] = pacsv.CSVWriter(split.paths["csv"], csv_ready(table.slice(0, 1)).schema)
    if "parquet" in formats:
        split.writers["parquet"].write_table(plain_text(table), row_group_size=table.num_rows)
    if "csv" in formats:
        split.writers["csv"].write_table(csv_ready(table))
    split.rows += table.num_rows


def _write_side_files(
    config: DatagenConfig,
    sim: TelemetrySimulator,
    out: Path,
    splits: dict[str, _Split],
    formats: Sequence[str],
    train_end_s: int,
) -> dict[str, Any]:
    end_s = config.start_epoch_s + config.n_steps * config.interval_s
    ranges = {"train": (config.start_epoch_s, train_end_s), "test": (train_end_s, end_s)}
    summary: dict[str, Any] = {
        "generator": "training.datagen",
        "config": config.to_dict(),
        "links": sim.topo.n_links,
        "nodes": len(sim.topo.node_ids),
        "splits": {},
    }
    for name, split in splits.items():
        lo, hi = ranges[name]
        records = [inc.record(sim.topo.node_ids) for inc in sim.incidents if inc.start_s < hi and inc.end_s > lo]
        (out / INCIDENT_FILES[name]).write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
        summary["splits"][name] = {
            "rows": split.rows,
            "start_epoch_s": lo,
            "end_epoch_s": hi,
            "files": [f"{split.name}.{fmt}" for fmt in FORMATS if fmt in formats] + [INCIDENT_FILES[name]],
            "incidents": len(records),
        }
    (out / DATASET_FILE).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary

"""Benchmark of the telemetry generator and validator: rows/s, peak memory, validation time.

    .venv/bin/python bench/bench_datagen.py                 # 2M rows, quick
    .venv/bin/python bench/bench_datagen.py --rows 10000000 # the 10M-row Parquet run (< 2 GiB RSS)

Generation and writing run in a child process (`python -m training datagen`) so its peak RSS is
measured on its own. Output goes to a temporary directory unless --out is given.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from training.datagen.config import DatagenConfig
from training.datagen.simulate import TelemetrySimulator
from training.validate import validate_files

INTERVAL_S = 60


def _config(rows: int, nodes: int) -> DatagenConfig:
    """A config of about `rows` rows: `nodes` nodes, 60 s interval, as many hours as needed."""
    links = TelemetrySimulator(DatagenConfig(nodes=nodes, hours=1, interval_s=INTERVAL_S)).topo.n_links
    steps = math.ceil(rows / links)
    return DatagenConfig(nodes=nodes, hours=steps * INTERVAL_S / 3600, interval_s=INTERVAL_S, test_fraction=0.0)


def bench_generation(config: DatagenConfig, max_rows: int) -> float:
    """Rows per second of generation alone (no writing), over the first max_rows rows."""
    sim = TelemetrySimulator(config)
    rows, started = 0, time.perf_counter()
    for _, table in sim.iter_tables():
        rows += table.num_rows
        if rows >= max_rows:
            break
    return rows / (time.perf_counter() - started)


# Run in a child process so that its peak RSS is its own; it prints rows and seconds of write_dataset
# (interpreter start-up and imports excluded).
_CHILD = """
import json, sys, time
from training.datagen import DatagenConfig, write_dataset
config = DatagenConfig(**json.loads(sys.argv[1]))
started = time.perf_counter()
summary = write_dataset(config, sys.argv[2], formats=sys.argv[3].split(","))
print(sum(s["rows"] for s in summary["splits"].values()), time.perf_counter() - started)
"""


def bench_write(config: DatagenConfig, out: Path, formats: str) -> tuple[int, float, float]:
    """(rows, seconds, peak RSS in MiB) of write_dataset writing `formats` to out, in a child process."""
    command = [sys.executable, "-c", _CHILD, json.dumps(config.to_dict()), str(out), formats]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    rows, seconds = done.stdout.split()
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux reports KiB
    return int(rows), float(seconds), peak_mib


def bench_validation(source: Path, out: Path, rows: int) -> tuple[int, float]:
    """(rows, seconds) of validate_files on the first `rows` rows of source, with its incidents."""
    table = pq.ParquetFile(source / "metrics_train.parquet").iter_batches(batch_size=rows)
    first = next(table)
    path = out / "validate_1m.parquet"
    pq.write_table(pa.Table.from_batches([first]), path)
    started = time.perf_counter()
    report = validate_files(path, source / "incidents_train.json")
    seconds = time.perf_counter() - started
    if not report.ok:
        print(report.format(), file=sys.stderr)
    return first.num_rows, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the large Parquet run")
    parser.add_argument("--nodes", type=int, default=400, help="nodes of the large run (about 4.8 links each)")
    parser.add_argument("--validate-rows", type=int, default=1_000_000, help="rows of the validation timing")
    parser.add_argument("--csv", action="store_true", help="also time the default dataset written as CSV+Parquet")
    parser.add_argument("--out", type=Path, default=None, help="keep output here instead of a temporary directory")
    args = parser.parse_args()
    config = _config(args.rows, args.nodes)
    with tempfile.TemporaryDirectory(prefix="bench_datagen_") as tmp:
        out = args.out or Path(tmp)
        gen_rate = bench_generation(config, min(args.rows, 1_000_000))
        print(f"generation only:       {gen_rate:,.0f} rows/s ({config.nodes} nodes, {config.interval_s} s interval)")
        rows, seconds, peak_mib = bench_write(config, out / "large", "parquet")
        print(
            f"generate + Parquet:    {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s, "
            f"peak RSS {peak_mib:,.0f} MiB"
        )
        if args.csv:
            total, seconds, _ = bench_write(DatagenConfig(), out / "default", "parquet,csv")
            print(f"default, CSV+Parquet:  {total:,} rows in {seconds:.1f} s = {total / seconds:,.0f} rows/s")
        n, seconds = bench_validation(out / "large", out, args.validate_rows)
        print(f"validation (Parquet):  {n:,} rows in {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

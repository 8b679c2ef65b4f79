"""Wall time and peak RSS of `training validate` and `training train` on generated telemetry of 10^6 and 10^7 rows.

    .venv/bin/python -m bench.bench_scale                       # both sizes, writes reports/scale/
    .venv/bin/python -m bench.bench_scale --sizes 1000000       # the small one only
    .venv/bin/python -m bench.bench_scale --code-root /tmp/old  # the same commands on another checkout

Datasets come from `python -m training datagen` (60 s interval, 2,000 samples per link, no test range;
100 nodes = 500 links = 10^6 rows, 1,000 nodes = 10^7) and are cached under data/scale/ (git-ignored).
Each command runs in its own child process, one after another, so its peak RSS
(getrusage(RUSAGE_CHILDREN).ru_maxrss of a fresh wait) is its own. The figures are also divided by the
rows, the cost per row that says how the command grows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTERVAL_S = 60
STEPS_PER_LINK = 2000  # samples per link: the row count is set by the nodes (5 links per node)
LINKS_PER_NODE = 5
HOURS = 33.34  # int(33.34 h * 3600 // 60) = 2,000 intervals
TRAIN_ARGS = ("--epochs", "1", "--max-train-windows", "5000", "--quiet")


@dataclass(frozen=True)
class Run:
    """One measured command."""

    command: str  # short name: validate, train bandwidth_predictor, ...
    rows: int
    wall_s: float
    peak_rss_mib: float
    exit_code: int

    @property
    def rss_bytes_per_row(self) -> float:
        """Peak RSS divided by the rows: how the command's memory grows."""
        return self.peak_rss_mib * 2**20 / self.rows

    @property
    def us_per_row(self) -> float:
        """Wall time per row in microseconds."""
        return self.wall_s * 1e6 / self.rows


def dataset(rows: int, cache: Path, code_root: Path) -> Path:
    """The directory of a generated dataset of `rows` rows (a multiple of 10,000), generated when absent."""
    nodes = rows // (STEPS_PER_LINK * LINKS_PER_NODE)
    out = cache / f"nodes_{nodes}_{STEPS_PER_LINK}_steps"
    if not (out / "dataset.json").exists():
        command = [
            *("-m", "training", "datagen", "--nodes", str(nodes), "--hours", str(HOURS)),
            *("--interval-s", str(INTERVAL_S), "--test-fraction", "0", "--formats", "parquet", "--quiet"),
            *("--out", str(out)),
        ]
        subprocess.run([sys.executable, *command], check=True, env=_env(code_root))
    written = json.loads((out / "dataset.json").read_text())["splits"]["train"]["rows"]
    if written != rows:
        raise SystemExit(f"{out}: {written} rows, expected {rows} (nodes x 5 links x {STEPS_PER_LINK} steps)")
    return out


def _env(code_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{code_root}:{code_root / 'gen' / 'python'}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


# Runs the command, polls its RSS (/proc) and kills it above the limit (exit -9): a run that would not fit
# the machine stops before the kernel's OOM killer picks a process of someone else. Prints wall s,
# ru_maxrss KiB, exit code.
_WRAPPER = """
import resource, subprocess, sys, time
limit_kib, t = float(sys.argv[1]) * 1024, time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
while child.poll() is None:
    try:
        rss = next(int(l.split()[1]) for l in open(f"/proc/{child.pid}/status") if l.startswith("VmRSS:"))
    except (OSError, StopIteration):
        rss = 0
    if limit_kib and rss > limit_kib:
        child.kill()
    time.sleep(0.1)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, child.returncode)
"""


def measure(name: str, args: list[str], rows: int, code_root: Path, log: Path, limit_mib: float = 0.0) -> Run:
    """Run `python -m training <args>` in a child process under nice; its wall time and peak RSS.

    RUSAGE_CHILDREN holds the largest RSS of any waited-for child so far, so each command is run from a
    fresh grandchild (a small Python parent that runs it and reports its own RUSAGE_CHILDREN). Above
    `limit_mib` (0: no limit) the command is killed, and its peak is then a lower bound.
    """
    command = ["nice", "-n", "19", sys.executable, "-c", _WRAPPER, str(limit_mib), sys.executable, "-m", "training"]
    command += args
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command[6:])}\n")
        out.flush()
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=out, text=True, env=_env(code_root), cwd=code_root
        )
    wall_s, max_rss_kib, code = done.stdout.strip().splitlines()[-1].split()
    with log.open("a") as out:
        out.write("\n".join(done.stdout.strip().splitlines()[:-1]) + "\n")
    return Run(name, rows, float(wall_s), int(max_rss_kib) / 1024, int(code))  # Linux ru_maxrss is KiB


def commands(data: Path, out: Path, models: list[str]) -> list[tuple[str, list[str]]]:
    """(name, arguments of `python -m training`) of every measured command on one dataset."""
    metrics, incidents = str(data / "metrics_train.parquet"), str(data / "incidents_train.json")
    runs = [("validate", ["validate", metrics, "--incidents", incidents, "--quiet"])]
    for model in models:
        train = ["train", "--data-path", metrics, "--models", model, *TRAIN_ARGS]
        if model == "reliability_detector":
            train += ["--incidents-path", incidents]
        train += ["--output-dir", str(out / "models"), "--report-dir", str(out / "report")]
        runs.append((f"train {model}", train))
    return runs


def table(runs: list[Run]) -> str:
    """A Markdown table of the runs."""
    lines = [
        "| command | rows | wall s | peak RSS MiB | RSS bytes/row | us/row | exit (-9: killed at the limit) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.command} | {r.rows:,} | {r.wall_s:.1f} | {r.peak_rss_mib:,.0f} | {r.rss_bytes_per_row:,.0f} "
            f"| {r.us_per_row:.2f} | {r.exit_code} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="rows per dataset")
    parser.add_argument(
        "--models",
        nargs="+",
        default=["bandwidth_predictor", "compression_selector"],
        help="models to time `train --models X` with (one run each)",
    )
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "scale", help="generated datasets")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "scale", help="table, JSON and logs")
    parser.add_argument("--code-root", type=Path, default=ROOT, help="checkout whose `training` is measured")
    parser.add_argument("--label", default="", help="suffix of the report files, e.g. 'before'")
    parser.add_argument(
        "--rss-limit-mib", type=float, default=16_000, help="kill a command above this RSS (0: no limit)"
    )
    args = parser.parse_args()
    code_root = args.code_root.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = f"-{args.label}" if args.label else ""
    log = args.out / f"scale{suffix}.log"
    log.write_text("")
    runs: list[Run] = []
    for rows in args.sizes:
        data = dataset(rows, args.cache.resolve(), code_root)
        with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
            for name, command in commands(data, Path(tmp), args.models):
                run = measure(name, command, rows, code_root, log, args.rss_limit_mib)
                print(f"{name:36s} {rows:>12,} rows  {run.wall_s:7.1f} s  {run.peak_rss_mib:8,.0f} MiB", flush=True)
                runs.append(run)
    text = table(runs)
    header = f"`bench.bench_scale` on {time.strftime('%Y-%m-%d %H:%M')}, code {code_root}\n\n"
    (args.out / f"scale{suffix}.md").write_text(header + text + "\n")
    (args.out / f"scale{suffix}.json").write_text(json.dumps([asdict(r) for r in runs], indent=1) + "\n")
    print(text)
    print(f"written: {args.out / f'scale{suffix}.md'} (log: {log})")
    return 1 if any(r.exit_code for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())

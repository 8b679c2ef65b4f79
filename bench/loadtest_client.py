"""Predictions per second per RPC through the Go client at p99 under the budget, coalescing on and off.

    .venv/bin/python -m bench.loadtest_client --model-dir models

Serves the models on 127.0.0.1 as `make loadtest` does (bench/processes.py), builds
clients/go/cmd/dwcp-inference-load, and for every RPC and both modes ramps its closed-loop workers
(single-item calls, one client, as a DWCP node calls) until p99 reaches the budget or a call fails. Each
mode's figure is the most predictions per second of a step with p99 under the budget and no error.
Prints one table with both modes side by side and writes it with every step's JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.processes import ROOT, serve, server_command
from bench.tables import check_model_dir, markdown_table

RPCS = ("PredictBandwidth", "SelectCompression", "DetectAnomaly", "DetectHighLatency")
GO_MODULE = ROOT / "clients" / "go"
Step = dict[str, Any]  # one run's JSON summary from the load generator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags of the client load test."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadtest_client", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"), help="Model directory to serve.")
    parser.add_argument(
        "--workers", default="1,4,16,64,128,256,512,1024", help="Closed-loop worker steps, comma separated."
    )
    parser.add_argument("--step-s", type=float, default=3.0, help="Measured length of each step.")
    parser.add_argument("--budget-ms", type=float, default=10.0, help="p99 budget in milliseconds.")
    parser.add_argument("--processes", type=int, default=2, help="Server processes sharing the port.")
    parser.add_argument("--server-args", default="", help="Extra flags for `python -m server`, one string.")
    parser.add_argument("--out", type=Path, default=Path("reports/loadtest-client"), help="Report folder.")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Best:
    """The best step of one RPC in one mode: predictions/s with p99 under the budget, or none."""

    predictions_per_s: float
    workers: int
    p99_ms: float

    def cell(self) -> str:
        """'49,798/s (64 workers, p99 5.5 ms)', or '-' when no step met the budget."""
        if self.workers == 0:
            return "-"
        return f"{self.predictions_per_s:,.0f}/s ({self.workers} workers, p99 {self.p99_ms:.1f} ms)"


def build_load_generator(out: Path) -> Path:
    """`go build` the load generator into out."""
    binary = out / "dwcp-inference-load"
    subprocess.run(["go", "build", "-o", str(binary), "./cmd/dwcp-inference-load"], cwd=GO_MODULE, check=True)
    return binary


def run_step(binary: Path, target: str, rpc: str, workers: int, coalesce: bool, step_s: float) -> Step:
    """One closed-loop run of the load generator; its JSON summary."""
    command = [
        str(binary),
        "-target",
        target,
        "-rpc",
        rpc,
        "-workers",
        str(workers),
        "-duration",
        f"{step_s}s",
        "-warmup",
        "1s",
        f"-coalesce={'true' if coalesce else 'false'}",
        "-json",
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: Step = json.loads(done.stdout)
    return result


def ramp(binary: Path, target: str, rpc: str, coalesce: bool, args: argparse.Namespace) -> tuple[Best, list[Step]]:
    """Steps through the worker counts until the budget is broken; the best step and every step."""
    steps: list[Step] = []
    best = Best(0.0, 0, 0.0)
    for workers in (int(w) for w in args.workers.split(",")):
        step = run_step(binary, target, rpc, workers, coalesce, args.step_s)
        steps.append(step)
        p99 = float(step["p99_ms"])
        rate = float(step["predictions_per_s"])
        errors = sum(step["errors"].values())
        mode = "on " if coalesce else "off"
        print(f"  {rpc:18} coalescing {mode} {workers:4} workers: {rate:9,.0f}/s p99 {p99:7.2f} ms errors {errors}")
        if p99 >= args.budget_ms or errors:
            break
        if rate > best.predictions_per_s:
            best = Best(rate, workers, p99)
    return best, steps


def main(argv: list[str] | None = None) -> int:
    """Serve, ramp every RPC in both modes, print and write the table."""
    args = parse_args(argv)
    check_model_dir(args.model_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    binary = build_load_generator(args.out.resolve())
    load = os.getloadavg()[0]
    rows: list[list[object]] = []
    raw: dict[str, object] = {"load_average_1m_at_start": load}
    with serve(server_command(args.model_dir, args.server_args.split()), args.processes, args.out) as server:
        for rpc in RPCS:
            on, on_steps = ramp(binary, server.target, rpc, True, args)
            off, off_steps = ramp(binary, server.target, rpc, False, args)
            raw[rpc] = {"coalescing_on": on_steps, "coalescing_off": off_steps}
            ratio = f"{on.predictions_per_s / off.predictions_per_s:.1f}x" if off.predictions_per_s else "-"
            rows.append([rpc, on.cell(), off.cell(), ratio])
    table = markdown_table(
        ["RPC", f"coalescing on: predictions/s at p99 < {args.budget_ms:g} ms", "coalescing off", "on / off"], rows
    )
    header = f"Go client, single-item calls, {args.processes} server processes; 1-min load average {load:.2f} at start"
    print(f"\n{header}\n\n{table}")
    (args.out / "summary.md").write_text(f"{header}\n\n{table}\n")
    (args.out / "steps.json").write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

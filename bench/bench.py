"""Where the time goes, per model: bare onnxruntime, the full RPC, and the gRPC transport floor, side by side.

    .venv/bin/python -m bench.bench --model-dir models

For each model: the median of onnxruntime on one row in-process (one intra-op thread, as served); the
full RPC through `python -m server` measured by ghz one request at a time; the same requests against
bench/echo_server.py (a grpcio server that answers with a same-size payload and does no work) = the
transport floor. ratio = server p50 / (floor p50 + model time): 1.0 means the server adds nothing
beyond transport and model; the second ratio divides by the echo server running the model per request
instead, transport and model measured together, and the bound (echo+model over floor+model) is the first
ratio a server doing no work of its own would reach. The model's mean time as the server ran it comes from
the server's own histogram. Then the highest rate holding p99 under the budget, and predictions per second
at batch sizes 1, 8, 32, 128 (closed loop). Prints a table and writes it to --out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from artifacts.session import session_options
from artifacts.versions import newest_version
from bench.ghz import Load, Summary, find_max_rate, run_ghz
from bench.payloads import (
    MODEL_OF_RPC,
    RPCS,
    SERVICE,
    ItemPools,
    build_pools,
    build_requests,
    load_telemetry,
    write_ghz_data,
)
from bench.processes import echo_command, serve, server_command
from bench.server_histogram import HISTOGRAM, MODEL_HISTOGRAM, Totals, snapshot
from bench.tables import check_model_dir, markdown_table

REQUESTS_PER_FILE = 32
ORT_RUNS = 2000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags of the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"), help="Model directory to serve.")
    parser.add_argument("--batches", default="1,8,32,128", help="Batch sizes of the scaling runs.")
    parser.add_argument(
        "--latency-requests", type=int, default=3000, help="Sequential requests per server and RPC, over all rounds."
    )
    parser.add_argument(
        "--latency-rounds", type=int, default=6, help="Turns the echo, echo+model and full servers take per RPC."
    )
    parser.add_argument("--scaling-s", type=float, default=3.0, help="Approximate length of each scaling run.")
    parser.add_argument("--scaling-concurrency", type=int, default=8, help="ghz workers in the scaling runs.")
    parser.add_argument(
        "--ramp-rates", default="250,500,750,1000,1500,2000,3000,4000", help="Rates tried for the maximum."
    )
    parser.add_argument("--ramp-step-s", type=float, default=2.0, help="Length of each ramp step.")
    parser.add_argument("--budget-ms", type=float, default=10.0, help="p99 budget in milliseconds.")
    parser.add_argument("--processes", type=int, default=1, help="Server (and echo) processes sharing the port.")
    parser.add_argument("--server-args", default="", help="Extra flags for `python -m server`, one string.")
    parser.add_argument("--echo-args", default="", help="Extra flags for the echo server, one string.")
    parser.add_argument("--data", type=Path, default=None, help="Telemetry Parquet (default: generated).")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"), help="Report folder.")
    return parser.parse_args(argv)


def served_version(model_dir: Path, model: str) -> Path:
    """The version directory the server would serve first (artifacts.versions.newest_version)."""
    version = newest_version(model_dir / model)
    if version is None:
        raise SystemExit(f"{model_dir / model} holds no model version")
    return version


def model_input(version: Path, rpc: str, items: list[Any]) -> np.ndarray:
    """The float32 input array of `items`, features in the manifest's order (what the server builds)."""
    manifest = json.loads((version / "manifest.json").read_text())
    names = [f["name"] for f in manifest["inputs"][0]["features"]]
    if rpc == "PredictBandwidth":
        rows: Any = [[[float(getattr(s, n)) for n in names] for s in w.samples] for w in items]
    elif rpc == "DetectHighLatency":
        rows = [list(w.consensus_latencies_ms) for w in items]
    else:
        rows = [[float(getattr(item, n)) for n in names] for item in items]
    return np.asarray(rows, dtype=np.float32)


def ort_median_ms(version: Path, inputs: np.ndarray, runs: int = ORT_RUNS) -> float:
    """Median wall time of one session.run on `inputs`, one intra-op thread (as the server runs it)."""
    options = session_options(intra_op_threads=1)  # the server's own options
    session = ort.InferenceSession(str(version / "model.onnx"), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: inputs}
    for _ in range(100):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _logs(out: Path, name: str) -> Path:
    (out / name).mkdir(parents=True, exist_ok=True)
    return out / name


def _median_p50(runs: list[Summary]) -> float:
    return statistics.median(r.p50_ms for r in runs)


def sequential(target: str, method: str, data: Path, requests: int) -> Summary:
    """One request at a time over one connection: latency without queueing."""
    return run_ghz(target, method, data, Load(0, 60, concurrency=1, connections=1, requests=requests))


def throughput(target: str, method: str, data: Path, seconds: float, concurrency: int) -> Summary:
    """Closed-loop throughput for about `seconds`: a short probe sizes the request count."""
    probe = run_ghz(target, method, data, Load(0, 30, concurrency, 4, requests=concurrency * 25))
    requests = max(concurrency * 25, round(probe.rps * seconds))
    return run_ghz(target, method, data, Load(0, seconds * 4, concurrency, 4, requests=requests))


def main(argv: list[str] | None = None) -> int:
    """Run the side-by-side benchmark and print its tables."""
    args = parse_args(argv)
    check_model_dir(args.model_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    batches = [int(b) for b in args.batches.split(",")]
    pools: ItemPools = build_pools(load_telemetry(args.data))
    data: dict[tuple[str, int], Path] = {}
    sizes: dict[str, int] = {}
    model_ms: dict[str, float] = {}
    for rpc in RPCS:
        for batch in batches:
            path = args.out / f"data-{rpc}-b{batch}.json"
            size = write_ghz_data(build_requests(pools, rpc, batch, REQUESTS_PER_FILE, seed=batch), path)
            data[rpc, batch] = path
            if batch == 1:
                sizes[rpc] = size
        version = served_version(args.model_dir, MODEL_OF_RPC[rpc])
        model_ms[rpc] = ort_median_ms(version, model_input(version, rpc, pools.pool(rpc)[:1]))
        print(f"onnxruntime {MODEL_OF_RPC[rpc]}: {model_ms[rpc]:.3f} ms", flush=True)

    # The three servers run at once and take turns per round, so a change in the machine's background load
    # falls on all three alike instead of on whichever phase it happened in.
    echo = echo_command(shlex.split(args.echo_args))
    echo_with_model = echo_command([*shlex.split(args.echo_args), "--model-dir", str(args.model_dir)])
    server = server_command(args.model_dir, shlex.split(args.server_args))
    latency: dict[tuple[str, str], list[Summary]] = {}
    in_server: dict[tuple[str, str], Totals] = {}  # (rpc, "model" | "handler") over the latency rounds
    per_round = max(1, args.latency_requests // args.latency_rounds)
    with (
        serve(echo, args.processes, _logs(args.out, "echo")) as echo_running,
        serve(echo_with_model, args.processes, _logs(args.out, "echo-model")) as echo_model_running,
        serve(server, args.processes, args.out) as server_running,
    ):
        targets = {"echo": echo_running, "echo+model": echo_model_running, "server": server_running}
        for rpc in RPCS:
            method = f"{SERVICE}.{rpc}"
            for running in targets.values():
                sequential(running.target, method, data[rpc, 1], 200)
            families = {
                "model": (MODEL_HISTOGRAM, {"model": MODEL_OF_RPC[rpc]}),
                "handler": (HISTOGRAM, {"method": rpc}),
            }
            before = snapshot(server_running.metrics_ports)
            for _ in range(args.latency_rounds):
                for name, running in targets.items():
                    latency.setdefault((name, rpc), []).append(
                        sequential(running.target, method, data[rpc, 1], per_round)
                    )
            after = snapshot(server_running.metrics_ports)
            for part, family in families.items():
                in_server[rpc, part] = after.totals(*family) - before.totals(*family)
            medians = ", ".join(f"{n} {_median_p50(latency[n, rpc]):.3f}" for n in targets)
            print(f"{rpc}: p50 ms {medians}", flush=True)

        scaling: dict[tuple[str, int], Summary] = {}
        maxima: dict[str, int] = {}
        rates = [int(r) for r in args.ramp_rates.split(",")]
        for rpc in RPCS:
            method = f"{SERVICE}.{rpc}"
            for batch in batches:
                scaling[rpc, batch] = throughput(
                    server_running.target, method, data[rpc, batch], args.scaling_s, args.scaling_concurrency
                )
            step = Load(0, args.ramp_step_s, 32, 4)
            maxima[rpc], _ = find_max_rate(
                server_running.target, method, data[rpc, 1], rates, step, args.budget_ms, None
            )
            print(f"server {rpc}: max {maxima[rpc]} rps", flush=True)

    side_rows = []
    for rpc in RPCS:
        f, fm, s = (_median_p50(latency[n, rpc]) for n in ("echo", "echo+model", "server"))
        m = model_ms[rpc]
        p99 = statistics.median(r.p99_ms for r in latency["server", rpc])
        served_ms, handler_ms = in_server[rpc, "model"].mean_ms, in_server[rpc, "handler"].mean_ms
        times_ms = [m, served_ms, f, fm, s, p99, handler_ms - served_ms, s - f - m]
        ratios = [fm / (f + m), s / (f + m), s / fm]
        side_rows.append([MODEL_OF_RPC[rpc], sizes[rpc], *(f"{t:.3f}" for t in times_ms), *ratios])
    side_headers = ["model", "request bytes", "onnxruntime 1 row ms (median)", "onnxruntime in server ms (mean)"]
    side_headers += ["echo floor p50 ms", "echo+model p50 ms", "server p50 ms", "server p99 ms"]
    side_headers += ["handler minus model ms (mean)", "server overhead ms"]
    side_headers += ["bound (echo+model)/(floor+model)", "ratio server/(floor+model)"]
    side_headers += ["ratio server/(echo+model)"]
    scale_headers = [
        "model",
        *[f"batch {b}: predictions/s (p99 ms)" for b in batches],
        f"max rps p99<{args.budget_ms:g}ms",
    ]
    scale_rows = []
    for rpc in RPCS:
        cells: list[object] = [MODEL_OF_RPC[rpc]]
        for batch in batches:
            run = scaling[rpc, batch]
            cells.append(f"{run.rps * batch:,.0f} ({run.p99_ms:.1f})" + (f" {run.errors} errors" if run.errors else ""))
        cells.append(maxima[rpc] if maxima[rpc] else f"< {rates[0]}")
        scale_rows.append(cells)
    text = "\n\n".join(
        [
            "# Benchmark: model, server and transport floor",
            f"{args.processes} process(es); server `{args.server_args or 'defaults'}`; models {args.model_dir}; "
            f"ghz on the same machine; latency = {args.latency_requests} requests one at a time per server, in "
            f"{args.latency_rounds} rounds the three servers take turns in (p50: median of the rounds'); "
            f"run took {time.monotonic() - started:.0f} s.",
            "## Side by side (single-item requests)",
            markdown_table(side_headers, side_rows),
            "floor+model adds onnxruntime's median in a tight loop to the echo floor; echo+model is the echo server "
            "also running the model per request (bench/echo_server.py --model-dir), both measured in one server "
            "thread: the model's cost as the server pays it. onnxruntime in server and handler minus model are "
            "the means of the server's own histograms (dwcp_inference_model_execution_seconds, "
            "dwcp_inference_rpc_duration_seconds: _sum / _count) over the latency rounds. The bound is the ratio a "
            "server whose own work cost nothing would reach: the echo server running the model, over the floor plus "
            "the model in a tight loop.",
            f"## Batch scaling (closed loop, {args.scaling_concurrency} in flight) and highest rate",
            markdown_table(scale_headers, scale_rows),
        ]
    )
    (args.out / "summary.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

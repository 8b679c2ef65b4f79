"""The latency gate: ghz per RPC at a stated rate (single and batch requests), then a ramp to the highest rate.

    .venv/bin/python -m bench.loadtest --model-dir models --rate 1000

Starts the server on 127.0.0.1 (free port, ready file), builds request payloads from synthetic telemetry,
and for every RPC runs ghz at --rate requests per second with single-item requests, then at --batch-rate
with --batch-item requests, one RPC at a time. Each RPC is then ramped through --ramp-rates (single
items) until p99 reaches the budget, an error occurs or the rate is not reached. Writes ghz JSON and
summary.md to --out; gate rows also give the server processes' and ghz's CPU time per request (the two share
these cores) and, per server process, the ghz connections it held and the CPU cores it used: the kernel puts
each connection on one process, so with few connections the split can be uneven (docs/performance.md).
--echo serves bench/echo_server.py instead, so the same command measures the transport floor.
--neighbours N runs the whole test beside N noisy neighbours (bench/neighbours.py: CPU- and cache-hungry
processes at nice 19 on the same cores, stopped at the end); each gate row then also gives the server's own
p50/p99 from its histogram (scraped from /metrics), which places a stall in the server or outside it.
Exits 1 when any gate phase has p99 at or over the budget, any error, or does not reach its rate.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from bench.ghz import Load, Summary, find_max_rate, run_ghz
from bench.neighbours import cpu_s as neighbour_cpu_s
from bench.neighbours import neighbours
from bench.payloads import RPCS, SERVICE, build_pools, build_requests, load_telemetry, write_ghz_data
from bench.processes import Running, echo_command, serve, server_command
from bench.server_histogram import GC_HISTOGRAM, Buckets, Snapshot, Totals, snapshot
from bench.tables import check_model_dir, markdown_table

REQUESTS_PER_FILE = 64  # distinct requests ghz sends round-robin
WARMUP_S = 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags of the load test."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadtest", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"), help="Model directory to serve.")
    parser.add_argument("--rate", type=int, default=1000, help="Gate rate: requests per second per RPC.")
    parser.add_argument("--batch", type=int, default=32, help="Items per request of the batch phase.")
    parser.add_argument("--batch-rate", type=int, default=100, help="Gate rate of the batch phase (requests/s).")
    parser.add_argument("--duration-s", type=float, default=10.0, help="Length of each constant-rate phase.")
    parser.add_argument(
        "--ramp-rates", default="250,500,750,1000,1500,2000,3000,4000", help="Ramp steps (rps), comma separated."
    )
    parser.add_argument("--ramp-step-s", type=float, default=3.0, help="Length of each ramp step.")
    parser.add_argument("--budget-ms", type=float, default=10.0, help="p99 budget in milliseconds.")
    parser.add_argument("--concurrency", type=int, default=32, help="ghz workers (requests in flight at most).")
    parser.add_argument("--connections", type=int, default=4, help="HTTP/2 connections ghz spreads them over.")
    parser.add_argument("--processes", type=int, default=1, help="Server processes sharing the port.")
    parser.add_argument("--server-args", default="", help="Extra flags for `python -m server`, one string.")
    parser.add_argument(
        "--echo", action="store_true", help="Serve bench/echo_server.py instead: the transport floor at the same load."
    )
    parser.add_argument(
        "--neighbours",
        type=int,
        default=0,
        help="Noisy neighbours (CPU- and cache-hungry processes at nice 19) running on the same cores throughout.",
    )
    parser.add_argument(
        "--neighbour-session",
        choices=("same", "own"),
        default="same",
        help="same: the neighbours share this benchmark's scheduling group, so nice 19 makes them the lowest "
        "priority; own: each has its own session, which the kernel's autogroup gives an equal CPU share "
        "whatever its niceness (like a pod in its own cgroup).",
    )
    parser.add_argument("--data", type=Path, default=None, help="Telemetry Parquet (default: generated).")
    parser.add_argument("--out", type=Path, default=Path("reports/loadtest"), help="Report folder.")
    args = parser.parse_args(argv)
    if args.neighbours < 0:
        parser.error(f"--neighbours {args.neighbours}: give 0 or more")
    return args


@dataclass(frozen=True)
class Spread:
    """How one run's load fell on the server processes: connections each held halfway through, CPU each used."""

    connections: list[int]
    cpu_s: list[float]
    wall_s: float
    server_histogram: Buckets  # the server's own RPC durations over the run (empty for the echo server)
    gc_pauses: list[Totals]  # the server's garbage collections over the run, by generation (empty for echo)

    def describe(self) -> str:
        """'16 conn, 0.55 cores / 16 conn, 0.54 cores': one entry per process."""
        cores = [cpu / max(self.wall_s, 1e-9) for cpu in self.cpu_s]
        return " / ".join(f"{n} conn, {c:.2f} cores" for n, c in zip(self.connections, cores, strict=True))


def _snapshot(server: Running) -> Snapshot:
    return snapshot([p for p in server.metrics_ports if p > 0])


def _gc_pauses(shot: Snapshot) -> list[Totals]:
    return [shot.totals(GC_HISTOGRAM, {"generation": str(g)}) for g in range(3)] if shot.samples else []


def describe_gc(pauses: list[Totals]) -> str:
    """'97/9/0, 17.3 ms': collections of generation 0/1/2 and the time all of them held the GIL."""
    if not pauses:
        return "-"
    counts = "/".join(f"{p.count:.0f}" for p in pauses)
    return f"{counts}, {sum(p.sum_s for p in pauses) * 1000:.1f} ms"


def _measured(server: Running, rpc: str, run: Callable[[], Summary], probe_after_s: float) -> tuple[Summary, Spread]:
    """`run()` (one ghz run of `rpc` against `server`), with the connections per process sampled `probe_after_s`
    in and the server's own histogram of the run."""
    sampled: list[list[int]] = []
    probe = threading.Timer(probe_after_s, lambda: sampled.append(server.connections()))
    before = _snapshot(server)
    cpu_before, started = server.cpu_s(), time.monotonic()
    probe.start()
    try:
        summary = run()
    finally:
        probe.cancel()
        probe.join()
    wall_s = time.monotonic() - started
    cpu_s = [after - before for before, after in zip(cpu_before, server.cpu_s(), strict=True)]
    after = _snapshot(server)
    histogram = after.buckets(rpc) - before.buckets(rpc)
    gc_pauses = [b - a for a, b in zip(_gc_pauses(before), _gc_pauses(after), strict=True)]
    return summary, Spread(sampled[0] if sampled else [0] * len(server.pids), cpu_s, wall_s, histogram, gc_pauses)


def _row(rpc: str, batch: int, target: int, s: Summary, ok: bool) -> list[object]:
    return [rpc, batch, target, s.rps, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.errors, "pass" if ok else "FAIL"]


def main(argv: list[str] | None = None) -> int:
    """Run the gate and the ramp; 0 when every RPC holds the budget at the gate rate."""
    args = parse_args(argv)
    check_model_dir(args.model_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pools = build_pools(load_telemetry(args.data))
    data: dict[tuple[str, int], Path] = {}
    sizes: dict[tuple[str, int], int] = {}
    for rpc in RPCS:
        for batch in (1, args.batch):
            data[rpc, batch] = args.out / f"data-{rpc}-b{batch}.json"
            sizes[rpc, batch] = write_ghz_data(build_requests(pools, rpc, batch, REQUESTS_PER_FILE), data[rpc, batch])
    gate_rows, ramp_rows, failures = [], [], []
    results: dict[str, object] = {}
    command = echo_command() if args.echo else server_command(args.model_dir, shlex.split(args.server_args))
    # Neighbours start before the server and stop after it; they end by themselves after the longest run could take.
    longest_s = len(RPCS) * (2 * args.duration_s + len(args.ramp_rates.split(",")) * args.ramp_step_s) * 3 + 600
    own_session = args.neighbour_session == "own"
    with (
        neighbours(args.neighbours, longest_s, own_session) as noisy,
        serve(command, args.processes, args.out) as server,
    ):
        neighbour_cpu_before, neighbour_started = neighbour_cpu_s(noisy), time.monotonic()
        for rpc in RPCS:
            method = f"{SERVICE}.{rpc}"
            run_ghz(server.target, method, data[rpc, 1], Load(args.rate, WARMUP_S, args.concurrency, args.connections))
            for batch, rate in ((1, args.rate), (args.batch, args.batch_rate)):
                load = Load(rate, args.duration_s, args.concurrency, args.connections)
                out_json = args.out / f"{rpc}-b{batch}-gate.json"
                run = partial(run_ghz, server.target, method, data[rpc, batch], load, out_json)
                s, spread = _measured(server, rpc, run, args.duration_s / 2)
                ok = s.within(args.budget_ms, rate)
                server_cpu_s = sum(spread.cpu_s)
                cpu_ms = [1000 * server_cpu_s / max(s.count, 1), 1000 * s.client_cpu_s / max(s.count, 1)]
                histogram = spread.server_histogram
                own_ms = [histogram.quantile_ms(0.5), histogram.quantile_ms(0.99)]
                gc_cell = describe_gc(spread.gc_pauses)
                gate_rows.append([*_row(rpc, batch, rate, s, ok), *own_ms, gc_cell, *cpu_ms, spread.describe()])
                results[f"{rpc}/b{batch}/gate"] = (
                    asdict(s)
                    | {"server_cpu_s": server_cpu_s, "server_p50_ms": own_ms[0], "server_p99_ms": own_ms[1]}
                    | {k: v for k, v in asdict(spread).items() if k != "server_histogram"}
                )
                if not ok:
                    failures.append(f"{rpc} batch {batch}: p99 {s.p99_ms:.2f} ms, {s.rps:.0f} rps, {s.errors} errors")
                print(f"gate {rpc} batch {batch}: {s.rps:.0f} rps p99 {s.p99_ms:.2f} ms errors {s.errors}", flush=True)
            rates = [int(r) for r in args.ramp_rates.split(",")]
            step = Load(0, args.ramp_step_s, args.concurrency, args.connections)
            best, steps = find_max_rate(server.target, method, data[rpc, 1], rates, step, args.budget_ms, args.out)
            for rate, s, ok in steps:
                ramp_rows.append(_row(rpc, 1, rate, s, ok))
                results[f"{rpc}/b1/ramp/{rate}"] = asdict(s)
                print(f"ramp {rpc} {rate} rps: {s.rps:.0f} rps p99 {s.p99_ms:.2f} ms errors {s.errors}", flush=True)
            results[f"{rpc}/max_rate_rps"] = best
        neighbour_wall_s = max(time.monotonic() - neighbour_started, 1e-9)
        neighbour_cores = (neighbour_cpu_s(noisy) - neighbour_cpu_before) / neighbour_wall_s
    results["neighbours"] = {"processes": args.neighbours, "cores_used": neighbour_cores}
    elapsed_s = time.monotonic() - started
    headers = ["rpc", "items/request", "target rps", "achieved rps", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    headers += ["errors", "verdict"]
    lowest = args.ramp_rates.split(",")[0]
    maxima = [[rpc, results[f"{rpc}/max_rate_rps"] or f"< {lowest}"] for rpc in RPCS]
    summary = "\n\n".join(
        [
            "# Load test",
            f"Server: {args.processes} process(es) `{' '.join(command[1:])}`; models {args.model_dir}; ghz "
            f"{args.concurrency} workers over {args.connections} connections on the same machine; budget p99 < "
            f"{args.budget_ms:g} ms; {args.duration_s:g} s per gate phase; run took {elapsed_s:.0f} s.",
            (
                f"Busy neighbours: {args.neighbours} process(es) at nice 19 hashing a 32 MiB buffer on the same "
                f"cores, in {'sessions of their own' if own_session else 'the benchmark session'}, "
                f"{neighbour_cores:.2f} cores used on average while the server ran."
                if args.neighbours
                else "No neighbours (`--neighbours N` adds them)."
            ),
            "Request sizes (bytes): " + ", ".join(f"{r} b{b} {n}" for (r, b), n in sorted(sizes.items())),
            f"## Gate: {args.rate} rps per RPC single items, {args.batch_rate} rps of {args.batch}-item requests "
            "(one RPC at a time)",
            markdown_table(
                [
                    *headers,
                    "server's own p50 ms",
                    "server's own p99 ms",
                    "server GC gen 0/1/2, ms in them",
                    "server CPU ms/request",
                    "ghz CPU ms/request",
                    "per server process",
                ],
                gate_rows,
            ),
            "The server's own p50/p99: its dwcp_inference_rpc_duration_seconds histogram over the phase (handler "
            "entry to answer, interpolated in its buckets), scraped from /metrics; ghz's figures add the client, "
            "HTTP/2, the kernel and the wait for a core. Server GC: the collections of each generation in the phase "
            "and their total time (dwcp_inference_gc_pause_seconds); every call in flight waits while one runs. Per "
            "server process: the ghz connections it held halfway through the phase and the CPU cores it used; each "
            "connection stays on the process the kernel gave it.",
            f"## Ramp (single items, {args.ramp_step_s:g} s per step, stops at the first miss)",
            markdown_table(headers, ramp_rows),
            "## Highest rate holding p99 under budget (single items)",
            markdown_table(["rpc", "rps"], maxima),
            "## Verdict",
            "PASS" if not failures else "FAIL: " + "; ".join(failures),
        ]
    )
    (args.out / "summary.md").write_text(summary + "\n")
    (args.out / "summary.json").write_text(json.dumps(results, indent=1))
    print(summary)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

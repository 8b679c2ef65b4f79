"""Soak: a mixed load (all four RPCs, single and batch) against `python -m server` on loopback for a set time.

Reports p99 per window, errors, the server's resident memory (VmRSS) after warm-up and at the end, and its
peak (VmHWM); fails when any call failed or memory grew more than --max-rss-growth.

    python -m tests.reliability.soak --minutes 10          # what `make soak` runs (SOAK_MINUTES)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from bench.tiny_models import committed_or_tiny_models
from dwcp.inference.v1 import inference_pb2_grpc as pb_grpc
from tests.server.helpers import ROOT, build_request, random_inputs, start_subprocess

RPCS = ("PredictBandwidth", "SelectCompression", "DetectAnomaly", "DetectHighLatency")
BATCH_ITEMS = {"PredictBandwidth": 32, "SelectCompression": 64, "DetectAnomaly": 64, "DetectHighLatency": 32}


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """The process's resident memory in KiB from /proc/<pid>/status: now (VmRSS) or its peak so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


@dataclass
class Window:
    """Calls finished in one reporting window."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Recorder:
    """Thread-safe per-window latencies and errors."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.started = time.monotonic()
        self.windows: dict[int, Window] = {}
        self.lock = threading.Lock()

    def record(self, latency_ms: float, error: str | None) -> None:
        index = int((time.monotonic() - self.started) // self.window_s)
        with self.lock:
            window = self.windows.setdefault(index, Window())
            window.latencies_ms.append(latency_ms)
            if error is not None:
                window.errors.append(error)


def _caller(
    stub: pb_grpc.InferenceServiceStub, rpc: str, rate_hz: float, until: float, recorder: Recorder, batch: int
) -> None:
    """Alternate single and batch calls of one RPC at a fixed rate until `until` (monotonic).

    It stops at `until` by the clock, behind schedule or not: a server too slow for the rate gets fewer
    calls made, which the report's call count shows (before, the schedule alone ended the loop, so the
    count was the same however slow the server was).
    """
    requests = [build_request(rpc, random_inputs(rpc, n, seed=n)) for n in (1, batch or BATCH_ITEMS[rpc])]
    method = getattr(stub, rpc)
    next_at, i = time.monotonic(), 0
    while next_at < until and time.monotonic() < until:
        time.sleep(max(0.0, next_at - time.monotonic()))
        start = time.perf_counter()
        try:
            method(requests[i % 2], timeout=2.0)
            error = None
        except grpc.RpcError as exc:
            error = f"{rpc}: {exc.code().name} {exc.details()}"
        recorder.record((time.perf_counter() - start) * 1000, error)
        i += 1
        next_at += 1.0 / rate_hz


def run(
    seconds: float, window_s: float, rate_per_rpc: float, warmup_s: float, max_rss_growth: float, batch_items: int = 0
) -> dict:
    """Run the soak and return its report (see `main` for the pass/fail rule); batch_items 0: BATCH_ITEMS."""
    work = Path(tempfile.mkdtemp(prefix="dwcp-soak-"))
    try:
        models = committed_or_tiny_models(ROOT / "models", work)
        process, ports = start_subprocess(models, work / "ready.json", "--reload-interval-s", "5")
        try:
            rss_ready = rss_kib(process.pid)
            channel = grpc.insecure_channel(f"127.0.0.1:{ports['grpc_port']}")
            stub = pb_grpc.InferenceServiceStub(channel)
            warm = Recorder(window_s)
            threads = [
                threading.Thread(
                    target=_caller, args=(stub, rpc, rate_per_rpc, time.monotonic() + warmup_s, warm, batch_items)
                )
                for rpc in RPCS
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            rss_start = rss_kib(process.pid)
            recorder = Recorder(window_s)
            until = time.monotonic() + seconds
            threads = [
                threading.Thread(target=_caller, args=(stub, rpc, rate_per_rpc, until, recorder, batch_items))
                for rpc in RPCS
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            rss_end, rss_peak = rss_kib(process.pid), rss_kib(process.pid, "VmHWM")
            channel.close()
            alive = process.poll() is None
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    windows = [
        {
            "window": index,
            "calls": len(w.latencies_ms),
            "p50_ms": round(float(np.percentile(w.latencies_ms, 50)), 3),
            "p99_ms": round(float(np.percentile(w.latencies_ms, 99)), 3),
            "errors": len(w.errors),
        }
        for index, w in sorted(recorder.windows.items())
    ]
    errors = [e for w in recorder.windows.values() for e in w.errors] + [
        e for w in warm.windows.values() for e in w.errors
    ]
    growth = (rss_end - rss_start) / rss_start
    return {
        "seconds": seconds,
        "window_s": window_s,
        "rate_per_rpc_hz": rate_per_rpc,
        "windows": windows,
        "calls": sum(w["calls"] for w in windows),
        "errors": len(errors),
        "first_errors": errors[:5],
        "rss_ready_kib": rss_ready,
        "rss_start_kib": rss_start,
        "rss_end_kib": rss_end,
        "rss_peak_kib": rss_peak,
        "calls_scheduled": int(seconds * rate_per_rpc * len(RPCS)),
        "rss_growth": round(growth, 4),
        "server_alive": alive,
        "passed": alive and not errors and growth <= max_rss_growth,
    }


def main(argv: list[str] | None = None) -> int:
    """Run, print the report (and a table), exit 1 unless no call failed and memory grew <= the limit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="Soak length after warm-up.")
    parser.add_argument("--window-s", type=float, default=60.0, help="Report p99 per window of this many seconds.")
    parser.add_argument("--rate-per-rpc", type=float, default=50.0, help="Calls per second of each of the 4 RPCs.")
    parser.add_argument("--warmup-s", type=float, default=10.0, help="Load before the starting VmRSS is read.")
    parser.add_argument(
        "--max-rss-growth", type=float, default=0.10, help="Largest allowed VmRSS growth (0.10: 10 %%)."
    )
    parser.add_argument(
        "--batch-items", type=int, default=0, help="Items of every batch call (0: 32-64 per RPC; 1024: the largest)."
    )
    parser.add_argument("--out", type=Path, default=None, help="Also write the report as JSON here.")
    args = parser.parse_args(argv)
    report = run(
        args.minutes * 60, args.window_s, args.rate_per_rpc, args.warmup_s, args.max_rss_growth, args.batch_items
    )
    print(f"{'window':>6} {'calls':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for w in report["windows"]:
        print(f"{w['window']:>6} {w['calls']:>7} {w['p50_ms']:>8.2f} {w['p99_ms']:>8.2f} {w['errors']:>6}")
    print(
        f"calls {report['calls']} of {report['calls_scheduled']} scheduled, errors {report['errors']}, "
        f"VmRSS ready {report['rss_ready_kib']} KiB, after warm-up {report['rss_start_kib']} KiB, "
        f"end {report['rss_end_kib']} KiB ({report['rss_growth']:+.1%}), peak (VmHWM) {report['rss_peak_kib']} KiB; "
        f"{'PASS' if report['passed'] else 'FAIL'}"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

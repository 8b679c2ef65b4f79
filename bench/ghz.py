"""Run ghz (pinned in .tools/bin) against a loopback target and read its JSON report into a summary."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GHZ = Path(os.environ.get("GHZ", ROOT / ".tools" / "bin" / "ghz"))
# ghz reads the schema from the .proto (the single source of the API), so the echo server needs no reflection.
PROTO_ROOT = ROOT / "proto"
PROTO_FILE = "dwcp/inference/v1/inference.proto"
NS_PER_MS = 1e6


@dataclass(frozen=True)
class Load:
    """One ghz run: a constant rate for a duration (rps 0 = as fast as `concurrency` closed-loop workers go).

    `concurrency` is ghz's worker count (requests in flight at most), `connections` the HTTP/2 connections
    they share; with several server processes on one port, each connection lands on one process.
    """

    rps: int
    duration_s: float
    concurrency: int = 32
    connections: int = 4
    requests: int = 0  # closed loop (rps 0): stop after this many requests instead of after duration_s


@dataclass(frozen=True)
class Summary:
    """What a ghz run measured; latencies in milliseconds, as ghz sees them (client side, over loopback)."""

    count: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_kinds: dict[str, int]
    client_cpu_s: float = float("nan")  # ghz's own user + system CPU time over the run

    def within(self, budget_ms: float, target_rps: int) -> bool:
        """No errors, p99 under the budget, and the target rate actually reached (95 %)."""
        reached = target_rps == 0 or self.rps >= 0.95 * target_rps
        return self.errors == 0 and self.p99_ms < budget_ms and reached


def summarise(report: dict[str, object]) -> Summary:
    """A Summary from ghz's JSON report (durations are nanoseconds)."""
    percentiles = {
        int(p["percentage"]): float(p["latency"]) / NS_PER_MS
        for p in report.get("latencyDistribution") or []  # type: ignore[attr-defined]
    }
    statuses: dict[str, int] = dict(report.get("statusCodeDistribution") or {})  # type: ignore[call-overload]
    error_kinds: dict[str, int] = dict(report.get("errorDistribution") or {})  # type: ignore[call-overload]
    errors = sum(n for code, n in statuses.items() if code != "OK")
    errors = max(errors, sum(error_kinds.values()))
    return Summary(
        count=int(report["count"]),  # type: ignore[call-overload]
        rps=float(report["rps"]),  # type: ignore[arg-type]
        p50_ms=percentiles.get(50, float("nan")),
        p90_ms=percentiles.get(90, float("nan")),
        p99_ms=percentiles.get(99, float("nan")),
        max_ms=float(report["slowest"]) / NS_PER_MS,  # type: ignore[arg-type]
        errors=errors,
        error_kinds=error_kinds,
    )


def ghz_report(target: str, method: str, data_file: Path, load: Load) -> tuple[dict[str, Any], float]:
    """Run ghz once (insecure, schema from proto/): its JSON report (with per-request `details`) and its CPU seconds.

    A run at a set rate is bounded by a request count (rps x duration), not by ghz's --duration, which
    cancels the requests in flight when time is up and reports them as errors.
    """
    total = max(1, round(load.rps * load.duration_s)) if load.rps else load.requests
    args = [
        str(GHZ),
        "--insecure",
        f"--import-paths={PROTO_ROOT}",
        f"--proto={PROTO_FILE}",
        f"--call={method}",
        f"--data-file={data_file}",
        f"--concurrency={load.concurrency}",
        f"--connections={load.connections}",
        f"--total={total}" if total else f"--duration={load.duration_s}s",
        "--timeout=2s",
        "--format=json",
        # The payloads are literal JSON: without these ghz runs every request through Go's text/template,
        # CPU taken from the cores the server shares (docs/performance.md).
        "--disable-template-functions",
        "--disable-template-data",
    ]
    if load.rps:
        args.append(f"--rps={load.rps}")
    args.append(target)
    limit_s = load.duration_s * 3 + 30
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # counts children once they are reaped: ghz alone here
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=limit_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"ghz {method} did not finish in {limit_s:.0f} s") from exc
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not done.stdout.strip():
        raise RuntimeError(f"ghz {method} failed (exit {done.returncode}): {done.stderr.strip()}")
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dict(json.loads(done.stdout)), cpu_s


def run_ghz(target: str, method: str, data_file: Path, load: Load, out_json: Path | None = None) -> Summary:
    """ghz_report, summarised; the report without per-request details is kept in out_json."""
    report, cpu_s = ghz_report(target, method, data_file, load)
    if out_json is not None:
        report.pop("details", None)  # one record per request: large and not needed for the summary
        out_json.write_text(json.dumps(report, indent=1))
    return replace(summarise(report), client_cpu_s=cpu_s)


def find_max_rate(
    target: str, method: str, data_file: Path, rates: list[int], step: Load, budget_ms: float, out_dir: Path | None
) -> tuple[int, list[tuple[int, Summary, bool]]]:
    """Step through `rates` (step.duration_s each) until one misses the budget; the highest that held, all steps."""
    best, steps = 0, []
    for rate in rates:
        out = out_dir / f"{method.rsplit('.', 1)[-1]}-ramp-{rate}.json" if out_dir is not None else None
        s = run_ghz(target, method, data_file, Load(rate, step.duration_s, step.concurrency, step.connections), out)
        ok = s.within(budget_ms, rate)
        steps.append((rate, s, ok))
        if not ok:
            break
        best = rate
    return best, steps

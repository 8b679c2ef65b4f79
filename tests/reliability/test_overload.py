"""Overload with ghz at several times the sustainable rate: accepted calls stay inside the budget on the
server, the rest are refused with RESOURCE_EXHAUSTED, nothing crashes, and a low-rate phase right after has
no errors. Bounded: about 15-20 s.

Client-side latencies are printed, not asserted: under an open-loop overload the backlog forms in gRPC core
before admission sees a call (see docs/reliability.md), and on a shared 2-core machine ghz competes with the
server for the CPU.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from google.protobuf.json_format import MessageToJson

from bench.ghz import GHZ, Load, ghz_report
from tests.server.helpers import build_request, random_inputs, start_subprocess

METHOD = "dwcp.inference.v1.InferenceService.DetectAnomaly"
BUDGET_MS = 10.0
OVERLOAD = {"rps": 3000, "total": 9000, "concurrency": 200}  # ~3x the ~900-1000 calls/s one process sustains
CALM = {"rps": 200, "total": 1000, "concurrency": 8}

# `make test` installs ghz; only a hand-run outside CI may skip.
pytestmark = pytest.mark.skipif(
    not GHZ.exists() and not os.environ.get("CI"), reason="ghz not installed: run `make .tools/bin/ghz`"
)


@contextmanager
def _serving(model_dir: Path, work: Path, *flags: str) -> Iterator[tuple[str, int]]:
    """A server subprocess: (target, metrics port); it must drain cleanly when the test is done."""
    process, ports = start_subprocess(model_dir, work / "ready.json", *flags)
    try:
        yield f"127.0.0.1:{ports['grpc_port']}", ports["metrics_port"]
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, "the server did not drain cleanly after the overload"


def _ghz(target: str, data: Path, rps: int, total: int, concurrency: int) -> list[dict]:
    """Per-request details of one ghz run (the same invocation as the benchmarks)."""
    report, _cpu_s = ghz_report(target, METHOD, data, Load(rps, total / rps, concurrency, 4))
    return list(report["details"])


def _server_p99_ms(text: str, method: str) -> float:
    """p99 of the OK RPCs of `method` from the server's duration histogram (upper bucket bound)."""
    prefix = 'dwcp_inference_rpc_duration_seconds_bucket{code="OK",le="'
    buckets = []
    for line in text.splitlines():
        if line.startswith(prefix) and f'method="{method}"' in line:
            bound = line[len(prefix) :].split('"', 1)[0]
            buckets.append((float(bound), float(line.split()[-1])))
    total = buckets[-1][1]
    return next(bound for bound, count in buckets if count >= 0.99 * total) * 1000


def _ms(details: list[dict], status: str) -> np.ndarray:
    return np.array([d["latency"] / 1e6 for d in details if d["status"] == status])


def _percentiles(name: str, values: np.ndarray) -> str:
    return f"{name} p50/p99 {np.percentile(values, 50):.2f}/{np.percentile(values, 99):.2f} ms"


def _overload(address: str, tmp_path: Path, refusal: str) -> tuple[dict[str, int], np.ndarray, np.ndarray, str, Path]:
    """Run OVERLOAD against `address`: (statuses, accepted ms, `refusal`-status ms, report line, request file)."""
    data = tmp_path / "request.json"
    data.write_text(MessageToJson(build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1))))
    details = _ghz(address, data, **OVERLOAD)
    statuses = {s: sum(d["status"] == s for d in details) for s in {d["status"] for d in details}}
    ok, refused = _ms(details, "OK"), _ms(details, refusal)
    report = f"overload {OVERLOAD}: statuses {statuses}; {_percentiles('accepted', ok)}; "
    report += _percentiles(refusal, refused) if len(refused) else f"no {refusal}"
    print(report)
    return statuses, ok, refused, report, data


def _assert_calm_phase_clean(address: str, data: Path) -> None:
    calm = _ghz(address, data, **CALM)
    errors = [d for d in calm if d["status"] != "OK"]
    print(f"calm {CALM}: {len(errors)} errors, p99 {np.percentile(_ms(calm, 'OK'), 99):.2f} ms")
    assert errors == [], errors[:3]


def test_overload_is_shed_fast_and_the_server_recovers(model_dir: Path, tmp_path: Path) -> None:
    with _serving(model_dir, tmp_path) as (address, metrics_port):
        statuses, ok, refused, report, data = _overload(address, tmp_path, "ResourceExhausted")
        assert set(statuses) <= {"OK", "ResourceExhausted"}, report  # no INTERNAL, UNAVAILABLE, timeouts
        assert len(refused) > 0 and len(ok) > 0, report
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        server_p99_ms = _server_p99_ms(text, "DetectAnomaly")
        print(f"server-side p99 of accepted calls <= {server_p99_ms:g} ms")
        # Other work on a shared 2-core host can add GIL and CPU waits, so the gate here is 2x the budget and
        # `make loadtest` is the 10 ms gate (figures measured with `pytest -s` in docs/reliability.md).
        assert server_p99_ms <= 2 * BUDGET_MS, report
        shed = 'dwcp_inference_requests_shed_total{method="DetectAnomaly",reason="in_flight_limit"}'
        counted = float(next(line for line in text.splitlines() if line.startswith(shed)).split()[-1])
        # The rest of the refusals come from gRPC's own backstop cap (4 x max_in_flight + 16 RPCs held at once).
        print(f"refused by admission (counted): {counted:.0f}, by the gRPC backstop: {len(refused) - counted:.0f}")
        assert 0 < counted <= len(refused), report
        _assert_calm_phase_clean(address, data)


BOUNDED = ("--max-pending-rpcs", "1", "--max-in-flight", "8")  # docs/reliability.md: the overload-bounded setting


def test_with_a_pending_bound_admitted_calls_do_not_wait_behind_the_backlog(model_dir: Path, tmp_path: Path) -> None:
    # The same overload against a server that lets gRPC core cancel calls while one already waits for the
    # Python layer (figures from `pytest -s` in docs/reliability.md). The bound asserted is 5x the budget,
    # because ghz sending 3,000 calls/s takes about a core of its own; the 10 ms is not met here.
    with _serving(model_dir, tmp_path, *BOUNDED) as (address, _metrics_port):
        statuses, ok, cancelled, report, data = _overload(address, tmp_path, "Canceled")
        assert set(statuses) <= {"OK", "ResourceExhausted", "Canceled"}, f"{BOUNDED}: {report}"
        assert len(ok) > 0 and len(cancelled) > 0, f"{BOUNDED}: {report}"
        assert np.percentile(ok, 99) <= 5 * BUDGET_MS, f"{BOUNDED}: {report}"
        assert np.percentile(cancelled, 99) <= 2 * BUDGET_MS, f"{BOUNDED}: {report}"
        _assert_calm_phase_clean(address, data)

"""Overload with ghz at several times the sustainable rate: behaviour, not time. Every call is answered OK or
refused (RESOURCE_EXHAUSTED by admission, CANCELLED by gRPC core's pending bound when it is set), every
refusal the client sees is counted once by the server, refused calls are not run, and a calm phase right
after has no errors. Bounded: about 15-20 s per test.

Latencies are printed, never asserted: another tenant on the 2 shared cores moves them (a p99 bound here once
failed at 91 ms against 20). `python -m bench.overload` measures them (figures in docs/reliability.md).
"""

from __future__ import annotations

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

# `make test` installs ghz; only a hand-run outside CI may skip (tests/conftest.py fails a skip under CI).
pytestmark = pytest.mark.skipif(not GHZ.exists(), reason="ghz not installed: run `make .tools/bin/ghz`")


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
    report, _cpu_s = ghz_report(target, METHOD, data, Load(rps, total / rps, concurrency, min(4, concurrency)))
    return list(report["details"])


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for line in text.splitlines():
        if line.startswith(name + "{") and all(label in line for label in wanted):
            return float(line.split()[-1])
    return 0.0


def _metrics(metrics_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _assert_counted_once(text: str, statuses: dict[str, int], report: str) -> None:
    """The server's shed counter and RPC histogram agree with what the client saw, call for call."""
    rpcs = "dwcp_inference_rpc_duration_seconds_count"
    shed = sum(
        _sample(text, "dwcp_inference_requests_shed_total", method="DetectAnomaly", reason=reason)
        for reason in ("in_flight_limit", "item_limit")
    )
    refused = statuses.get("ResourceExhausted", 0)
    print(f"refusals seen by the client {refused}, counted by the server {shed:.0f}")
    assert shed == refused, report
    assert _sample(text, rpcs, method="DetectAnomaly", code="RESOURCE_EXHAUSTED") == refused, report
    # OK on the server exactly when OK at the client: no refused or cancelled call ran the model.
    assert _sample(text, rpcs, method="DetectAnomaly", code="OK") == statuses.get("OK", 0), report


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


def _assert_calm_phase_clean(address: str, data: Path, concurrency: int) -> None:
    calm = _ghz(address, data, **(CALM | {"concurrency": concurrency}))
    errors = [d for d in calm if d["status"] != "OK"]
    print(
        f"calm {CALM}, concurrency {concurrency}: {len(errors)} errors, p99 {np.percentile(_ms(calm, 'OK'), 99):.2f} ms"
    )
    assert errors == [], errors[:3]


# One call at a time is admitted: the tiny models answer fast enough on a quiet machine that the default
# bound of 16 may never be reached by OVERLOAD, and the test is about shedding, not about the bound's size.
SHEDDING = ("--max-in-flight", "1")


def test_overload_is_shed_and_counted_and_the_server_recovers(model_dir: Path, tmp_path: Path) -> None:
    with _serving(model_dir, tmp_path, *SHEDDING) as (address, metrics_port):
        statuses, ok, refused, report, data = _overload(address, tmp_path, "ResourceExhausted")
        assert set(statuses) <= {"OK", "ResourceExhausted"}, report  # no INTERNAL, UNAVAILABLE, CANCELLED, timeouts
        assert len(refused) > 0 and len(ok) > 0, report
        _assert_counted_once(_metrics(metrics_port), statuses, report)
        _assert_calm_phase_clean(address, data, 1)  # one call at a time: nothing to shed


BOUNDED = ("--max-pending-rpcs", "1", "--max-in-flight", "8")  # docs/reliability.md: the overload-bounded setting


def test_with_a_pending_bound_the_backlog_is_cancelled_unrun_and_admitted_calls_answered(
    model_dir: Path, tmp_path: Path
) -> None:
    # The same overload against a server that lets gRPC core cancel a call while one already waits for the
    # Python layer: those calls are CANCELLED before any Python runs, the rest answered OK or refused.
    with _serving(model_dir, tmp_path, *BOUNDED) as (address, metrics_port):
        statuses, ok, cancelled, report, data = _overload(address, tmp_path, "Canceled")
        assert set(statuses) <= {"OK", "ResourceExhausted", "Canceled"}, f"{BOUNDED}: {report}"
        assert len(ok) > 0 and len(cancelled) > 0, f"{BOUNDED}: {report}"
        _assert_counted_once(_metrics(metrics_port), statuses, f"{BOUNDED}: {report}")
        # One call at a time: with a pending bound of 1, concurrent calls may be cancelled by design whenever
        # the process is slow to take them (once seen with 8 under other load), one at a time never.
        _assert_calm_phase_clean(address, data, 1)

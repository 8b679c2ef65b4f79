"""Overload figures the tests no longer assert: latency under a flood, a victim's, and peak memory.

Each run is against a fresh `python -m server`:

- flood: ghz at several times the sustainable rate, with default flags and with `--max-pending-rpcs 1
  --max-in-flight 8`; statuses and client-side p50/p99 of accepted and refused calls;
- victim: 4 clients sending 1,024-node DetectAnomaly batches while one single-item caller calls in a loop;
  the victim's p50/p99 and the flood's statuses;
- memory: closed-loop callers of the largest batches of all four RPCs, with the default request window and
  with gRPC's own (`--request-window-bytes 0`); the server's peak resident memory (VmHWM), the figure the
  Deployment's memory limit is sized from (docs/reliability.md).

Usage: .venv/bin/python -m bench.overload [--model-dir models] [--victim-calls 500] [--only-flood
       --flood-server-args '...']  (needs .tools/bin/ghz)
"""

from __future__ import annotations

import argparse
import shlex
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import grpc
import numpy as np
from google.protobuf.json_format import MessageToJson

from bench.ghz import Load, ghz_report
from bench.processes import serve, server_command
from bench.tiny_requests import build_request, random_inputs
from dwcp.inference.v1 import inference_pb2_grpc as pb_grpc

METHOD = "dwcp.inference.v1.InferenceService.DetectAnomaly"
FLOOD = Load(rps=3000, duration_s=3.0, concurrency=200, connections=4)  # ~3x what one process sustains
BOUNDED = ["--max-pending-rpcs", "1", "--max-in-flight", "8"]
GRPC_WINDOWS = ["--request-window-bytes", "0"]  # before the request window: gRPC's own, grown by BDP probing


def _p(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.2f}" if values else "-"


def flood(model_dir: Path, flags: list[str], scratch: Path) -> str:
    """One ghz flood against a server started with `flags`: a Markdown table row."""
    data = scratch / "request.json"
    data.write_text(MessageToJson(build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1))))
    with serve(server_command(model_dir, flags), 1, scratch) as running:
        report, _cpu_s = ghz_report(running.target, METHOD, data, FLOOD)
    by_status: dict[str, list[float]] = {}
    for detail in report["details"]:
        by_status.setdefault(detail["status"], []).append(detail["latency"] / 1e6)
    statuses = ", ".join(f"{s} {len(v)}" for s, v in sorted(by_status.items()))
    ok = by_status.get("OK", [])
    refused = [ms for s, v in by_status.items() if s != "OK" for ms in v]
    return f"| `{' '.join(flags) or 'defaults'}` | {statuses} | {_p(ok, 50)} / {_p(ok, 99)} | {_p(refused, 99)} |"


def victim(model_dir: Path, calls: int, scratch: Path) -> str:
    """A single-item caller's latency while 4 clients flood 1,024-node batches: a Markdown table row."""
    big = build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1024))
    small = build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1))
    with serve(server_command(model_dir), 1, scratch) as running:
        channel = grpc.insecure_channel(running.target)
        stub = pb_grpc.InferenceServiceStub(channel)
        stop, codes, lock = threading.Event(), Counter[str](), threading.Lock()

        def flooder() -> None:
            while not stop.is_set():
                try:
                    stub.DetectAnomaly(big, timeout=30)
                    code = "OK"
                except grpc.RpcError as exc:
                    code = exc.code().name
                with lock:
                    codes[code] += 1

        threads = [threading.Thread(target=flooder) for _ in range(4)]
        for thread in threads:
            thread.start()
        latencies_ms, failed = [], 0
        try:
            time.sleep(1.0)  # let the flood reach its steady state
            for _ in range(calls):
                started = time.perf_counter()
                try:
                    stub.DetectAnomaly(small, timeout=30)
                    latencies_ms.append((time.perf_counter() - started) * 1000)
                except grpc.RpcError:
                    failed += 1
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            channel.close()
    flood_codes = ", ".join(f"{code} {n}" for code, n in sorted(codes.items()))
    return f"| {calls} | {failed} | {_p(latencies_ms, 50)} / {_p(latencies_ms, 99)} | {flood_codes} |"


def peak_memory(
    model_dir: Path, callers: int, seconds: float, scratch: Path, flags: Sequence[str] = (), channels: int = 1
) -> str:
    """Peak resident memory (VmHWM) of one server process under `callers` closed-loop callers of the largest
    batches (1,024 items, all four RPCs) over `channels` connections, run with the Deployment's flags plus
    `flags`: a Markdown table row."""
    flags = ["--ort-intra-op-threads", "1", *flags]  # as deploy/k8s/deployment.yaml runs it
    rpcs = ("PredictBandwidth", "SelectCompression", "DetectAnomaly", "DetectHighLatency")
    requests = {rpc: build_request(rpc, random_inputs(rpc, 1024)) for rpc in rpcs}
    with serve(server_command(model_dir, flags), 1, scratch) as running:
        pid = running.pids[0]
        ready_kib = _status_kib(pid, "VmRSS")
        # A local subchannel pool per channel: each is its own TCP connection, as separate clients would be.
        options = [("grpc.use_local_subchannel_pool", 1)]
        opened = [grpc.insecure_channel(running.target, options=options) for _ in range(channels)]
        stubs = [pb_grpc.InferenceServiceStub(channel) for channel in opened]
        until, codes, lock = time.monotonic() + seconds, Counter[str](), threading.Lock()

        def caller(index: int) -> None:
            rpc = rpcs[index % len(rpcs)]
            method = getattr(stubs[index % channels], rpc)
            while time.monotonic() < until:
                try:
                    method(requests[rpc], timeout=30)
                    code = "OK"
                except grpc.RpcError as exc:
                    code = exc.code().name
                with lock:
                    codes[code] += 1

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for channel in opened:
            channel.close()
        peak_kib, end_kib = _status_kib(pid, "VmHWM"), _status_kib(pid, "VmRSS")
    statuses = ", ".join(f"{code} {n}" for code, n in sorted(codes.items()))
    mib = [round(kib / 1024, 1) for kib in (ready_kib, end_kib, peak_kib)]
    shown = " ".join(flags[2:]) or "defaults"
    return f"| `{shown}` | {callers} | {channels} | {seconds:g} | {statuses} | {mib[0]} / {mib[1]} / **{mib[2]}** |"


def _status_kib(pid: int, field: str) -> int:
    """A memory figure (VmRSS, VmHWM) of a process in KiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def _floods(model_dir: Path, extra: list[str], scratch: Path) -> None:
    print(f"flood: ghz {FLOOD}")
    print("| server flags | statuses | accepted p50 / p99 ms | refused p99 ms |\n|---|---|---|---|")
    for flags in ([], BOUNDED):
        print(flood(model_dir, [*flags, *extra], scratch), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"), help="Model directory to serve.")
    parser.add_argument("--victim-calls", type=int, default=500, help="Single-item calls made under the flood.")
    parser.add_argument(
        "--memory-callers", type=int, nargs="+", default=[64, 256], help="Callers of 1,024-item batches (memory runs)."
    )
    parser.add_argument("--memory-channels", type=int, default=1, help="Connections the memory callers share.")
    parser.add_argument("--memory-s", type=float, default=60.0, help="Length of each memory run in seconds.")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--only-memory", action="store_true", help="Run only the memory run.")
    only.add_argument("--only-flood", action="store_true", help="Run only the flood runs.")
    parser.add_argument(
        "--flood-server-args", default="", help="Extra flags for the flood runs' servers, one string (both rows)."
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dwcp-overload-") as scratch:
        if args.only_flood:
            _floods(args.model_dir, shlex.split(args.flood_server_args), Path(scratch))
            return 0
        print("memory: closed-loop callers of 1,024-item batches over the 4 RPCs, --ort-intra-op-threads 1")
        print("| server flags | callers | connections | seconds | statuses | VmRSS ready / end / peak MiB |")
        print("|---|---|---|---|---|---|")
        for flags in ([], GRPC_WINDOWS):
            for callers in args.memory_callers:
                row = peak_memory(args.model_dir, callers, args.memory_s, Path(scratch), flags, args.memory_channels)
                print(row, flush=True)
        if args.only_memory:
            return 0
        _floods(args.model_dir, shlex.split(args.flood_server_args), Path(scratch))
        print("\nvictim: 4 clients of 1,024-node batches, one single-item caller, default flags")
        print("| victim calls | victim failed | victim p50 / p99 ms | flood statuses |\n|---|---|---|---|")
        print(victim(args.model_dir, args.victim_calls, Path(scratch)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Print the README's grpcurl examples with their real output: one call per RPC against the served models.

Usage: .venv/bin/python scripts/grpcurl_examples.py [--all] [MODEL_DIR]  (needs .tools/bin/grpcurl; starts its own
server). --all adds reflection, health, GetModelInfo and a refused request (docs/serving.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from server.ready import NotReadyError, wait_ready_file

ROOT = Path(__file__).resolve().parents[1]
GRPCURL = ROOT / ".tools" / "bin" / "grpcurl"
SERVICE = "dwcp.inference.v1.InferenceService"
SAMPLE = {
    "rtt_ms": 42,
    "jitter_ms": 1.5,
    "throughput_mbps": 900,
    "packet_loss_ratio": 0.0005,
    "link_type": "LINK_TYPE_WAN",
    "network_tier": "NETWORK_TIER_TIER1",
    "congestion_window_segments": 3200,
}
# Twenty commit latencies of a calm cluster, in ms.
STEADY_MS = [21, 22, 20, 23, 21, 22, 21, 20, 22, 21, 23, 22, 21, 20, 22, 21, 22, 23, 21, 22]
CALLS = [
    ("PredictBandwidth", {"links": [{"link_id": "fra-ams", "samples": [SAMPLE] * 10}]}),
    (
        "SelectCompression",
        {
            "items": [
                {
                    "link_id": "fra-ams",
                    "throughput_mbps": 900,
                    "rtt_ms": 42,
                    "link_type": "LINK_TYPE_WAN",
                    "hde_compression_ratio": 2.5,
                    "hde_delta_hit_ratio": 0.3,
                    "amst_transfer_rate_mbps": 850,
                }
            ]
        },
    ),
    (
        "DetectAnomaly",
        {
            "nodes": [
                {
                    "node_id": "node-7",
                    "uptime_pct": 100,
                    "failure_ratio": 0.0005,
                    "packet_loss_ratio": 0.0002,
                    "retransmits_count": 3,
                    "error_budget_burn_rate": 0.2,
                    "rtt_ms": 40,
                },
                {
                    "node_id": "node-9",
                    "uptime_pct": 71,
                    "failure_ratio": 0.2,
                    "packet_loss_ratio": 0.05,
                    "retransmits_count": 4000,
                    "error_budget_burn_rate": 40,
                    "rtt_ms": 900,
                },
            ]
        },
    ),
    (
        "DetectHighLatency",
        {
            "windows": [
                {"cluster_id": "raft-eu", "consensus_latencies_ms": STEADY_MS},
                {"cluster_id": "raft-us", "consensus_latencies_ms": STEADY_MS[:16] + [2500, 1800, 900, 400]},
            ]
        },
    ),
]


EXTRA_CALLS = [
    ("grpc.health.v1.Health/Check", {"service": SERVICE}),
    (f"{SERVICE}/GetModelInfo", {"model_name": "reliability_detector"}),
    (
        f"{SERVICE}/DetectAnomaly",
        {"nodes": [{"node_id": "node-7", "uptime_pct": 140, "failure_ratio": 0.001, "rtt_ms": 40}]},
    ),
]


def start_server(model_dir: Path, ready: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The real server on a free loopback port; returns the process and its gRPC port."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "--grpc-port",
            "0",
            "--metrics-port",
            "-1",
            "--model-dir",
            str(model_dir),
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return proc, int(wait_ready_file(proc, ready, timeout_s=60)["grpc_port"])
    except NotReadyError as exc:
        proc.kill()
        raise SystemExit(str(exc)) from None


def _grpcurl(port: int, method: str, body: object) -> None:
    """Run one grpcurl call and print it with its output (errors too) as a Markdown block."""
    data = json.dumps(body, separators=(",", ":")) if body is not None else None
    args = [
        str(GRPCURL),
        "-plaintext",
        *(["-d", data] if data else []),
        f"127.0.0.1:{port}",
        *([method] if method else ["list"]),
    ]
    result = subprocess.run(args, capture_output=True, text=True)
    shown = f"-d '{data}' \\\n    " if data else ""
    print(f"```console\n$ grpcurl -plaintext {shown}127.0.0.1:50051 {method or 'list'}")
    print((result.stdout + result.stderr).rstrip() + "\n```\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: an optional model directory and --all."""
    parser = argparse.ArgumentParser(
        prog="scripts/grpcurl_examples.py", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("model_dir", nargs="?", type=Path, default=ROOT / "models", help="Model directory to serve.")
    parser.add_argument(
        "--all", action="store_true", help="Also reflection, health, GetModelInfo and a refused request."
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run each call and print a Markdown block with the command and its output."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_server(args.model_dir, Path(tmp) / "ready.json")
        try:
            if args.all:
                _grpcurl(port, "", None)
            for method, body in CALLS:
                _grpcurl(port, f"{SERVICE}/{method}", body)
            if args.all:
                for method, body in EXTRA_CALLS:
                    _grpcurl(port, method, body)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()

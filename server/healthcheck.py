"""`python -m server.healthcheck`: a grpc.health.v1 probe for container HEALTHCHECKs; exit 0 only when SERVING."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.settings import ENV_PREFIX, Settings

# The probe runs inside the container next to the server, so it asks loopback by default.
DEFAULT_HOST = "127.0.0.1"


def build_parser() -> argparse.ArgumentParser:
    """Flags of the probe; the port defaults to the server's own (DWCP_INFERENCE_GRPC_PORT, else 50051)."""
    parser = argparse.ArgumentParser(
        prog="python -m server.healthcheck",
        description="Ask a running server's grpc.health.v1 service; exit 0 when SERVING, 1 otherwise.",
    )
    default_port = int(os.environ.get(ENV_PREFIX + "GRPC_PORT", Settings.grpc_port))
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"Server address (default {DEFAULT_HOST}).")
    parser.add_argument("--port", type=int, default=default_port, help=f"gRPC port (default {default_port}).")
    parser.add_argument("--service", default="", help="Service name to ask about; empty (default) is the whole server.")
    parser.add_argument("--timeout-s", type=float, default=2.0, help="Deadline of the check in seconds (default 2).")
    return parser


def check(host: str, port: int, service: str = "", timeout_s: float = 2.0) -> tuple[bool, str]:
    """Ask the health service once; returns (serving, a one-line description of the answer)."""
    target = f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as exc:
            return False, f"{target}: {exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{target} service {service!r}: {status}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one check and print its answer; the exit code is what a HEALTHCHECK reads."""
    args = build_parser().parse_args(argv)
    serving, message = check(args.host, args.port, args.service, args.timeout_s)
    print(message, file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())

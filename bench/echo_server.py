"""The transport floor: a minimal Python gRPC server answering every InferenceService RPC with a same-size payload.

It decodes nothing and runs nothing: a generic handler takes the request bytes and returns as many bytes,
an unknown field any client decodes as an empty response. ghz against it measures what grpcio in Python
and the loopback cost before the server does any work.

With --model-dir it also runs, per request, the RPC's served model (the newest version, the server's session
options) on one row of its manifest's example, decoding nothing still: transport plus model, measured
together in the conditions of a server thread, where a model run costs more than in a tight loop (caches
and predictors are cold after the transport's work; docs/performance.md, "Per-request work").

    python -m bench.echo_server --grpc-port 0 --ready-file /tmp/echo.json [--model-dir models]
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import grpc

from artifacts.read import read_version
from artifacts.session import ort_session
from artifacts.versions import newest_version
from dwcp.inference.v1 import inference_pb2 as pb
from server.ready import write_ready_file

SERVICE = pb.DESCRIPTOR.services_by_name["InferenceService"]
UNKNOWN_FIELD_NUMBER = 1000  # not used by any response message, so decoders skip it


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@cache
def same_size_payload(size: int) -> bytes:
    """`size` bytes that decode as an empty message carrying one unknown length-delimited field."""
    tag = _varint(UNKNOWN_FIELD_NUMBER << 3 | 2)
    if size < len(tag) + 1:
        return b""
    body = size - len(tag) - 1
    while len(tag) + len(_varint(body)) + body > size:
        body -= 1
    return tag + _varint(body) + b"\x00" * body


def _echo(request: bytes, _context: Any) -> bytes:
    return same_size_payload(len(request))


def _echo_after_model(model_dir: Path, rpc: str) -> Callable[[bytes, Any], bytes]:
    """_echo, after one run of `rpc`'s newest model version on one row of its manifest's example."""
    manifest, model_bytes = read_version(newest_served_version(model_dir, rpc))
    session = ort_session(model_bytes, 1)
    feed = {manifest.input.name: manifest.example_input.reshape(-1, *manifest.input.shape[1:])[:1]}
    outputs = [o.name for o in manifest.outputs]

    def echo(request: bytes, context: Any) -> bytes:
        session.run(outputs, feed)
        return _echo(request, context)

    return echo


def newest_served_version(model_dir: Path, rpc: str) -> Path:
    """The newest version of the model serving `rpc` under `model_dir` (one model directory per RPC)."""
    for model in sorted(p for p in model_dir.iterdir() if p.is_dir()):
        version = newest_version(model)
        if version is not None and read_version(version)[0].rpc == rpc:
            return version
    raise SystemExit(f"{model_dir}: no model version serves {rpc}")


def _handler(behaviour: Callable[..., Any], model_dir: Path | None = None) -> grpc.GenericRpcHandler:
    methods = {}
    for m in SERVICE.methods:
        answer = behaviour if model_dir is None or m.name == "GetModelInfo" else _echo_after_model(model_dir, m.name)
        methods[m.name] = grpc.unary_unary_rpc_method_handler(answer)
    return grpc.method_handlers_generic_handler(SERVICE.full_name, methods)


def serve_threads(args: argparse.Namespace) -> None:
    """A thread-pool grpc.server, like the inference server."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=args.grpc_threads), options=[("grpc.so_reuseport", args.reuse_port)]
    )
    server.add_generic_rpc_handlers((_handler(_echo, args.model_dir),))
    port = server.add_insecure_port(f"{args.host}:{args.grpc_port}")
    server.start()
    if args.ready_file is not None:
        write_ready_file(args.ready_file, port, metrics_port=-1)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()


def main() -> None:
    """Parse flags and serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.echo_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (loopback by default).")
    parser.add_argument("--grpc-port", type=int, default=0, help="Port; 0 picks a free one.")
    parser.add_argument("--reuse-port", type=int, default=0, help="1 lets several processes share the port.")
    parser.add_argument("--ready-file", type=Path, default=None, help="Write {grpc_port, pid} JSON here once up.")
    parser.add_argument("--grpc-threads", type=int, default=4, help="Worker threads.")
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="Also run each RPC's served model per request (see above)."
    )
    serve_threads(parser.parse_args())


if __name__ == "__main__":
    main()

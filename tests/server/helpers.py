"""Shared test helpers: a running in-process server, valid random requests, and direct onnxruntime answers.

The requests come from bench.tiny_requests (shared with the fuzz harness); they are re-exported here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnxruntime as ort
from prometheus_client import CollectorRegistry

from bench.tiny_requests import build_request as build_request  # re-exported for the tests
from bench.tiny_requests import random_inputs as random_inputs
from dwcp.inference.v1 import inference_pb2_grpc as pb_grpc
from server.app import InferenceApp
from server.ready import NotReadyError, wait_ready_file
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningServer:
    """An in-process server and a stub connected to it."""

    app: InferenceApp
    channel: grpc.Channel
    stub: pb_grpc.InferenceServiceStub
    registry: CollectorRegistry


@contextmanager
def running_server(model_dir: Path, **overrides: Any) -> Iterator[RunningServer]:
    """Start the real server on free ports (polling off unless asked), yield it, and drain it."""
    values: dict[str, Any] = {"grpc_port": 0, "metrics_port": 0, "model_dir": model_dir, "reload_interval_s": 0}
    registry = CollectorRegistry()
    app = InferenceApp(Settings(**(values | overrides)), registry)
    app.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{app.grpc_port}")
    try:
        yield RunningServer(app, channel, pb_grpc.InferenceServiceStub(channel), registry)
    finally:
        channel.close()
        app.stop(grace_s=1.0)


@contextmanager
def gated_server(model_dir: Path, **overrides: Any) -> Iterator[tuple[RunningServer, threading.Event, threading.Event]]:
    """One gRPC thread whose handler waits for `release`; `entered` is set when a handler starts waiting."""
    with running_server(model_dir, grpc_threads=1, **overrides) as running:
        handle, release, entered = running.app.handler.handle, threading.Event(), threading.Event()

        def gated(*args: Any) -> Any:
            running.app.handler.last_caller = args[3] if len(args) > 3 else None  # type: ignore[attr-defined]
            entered.set()
            release.wait(timeout=20)
            return handle(*args)

        running.app.handler.handle = gated  # type: ignore[method-assign,assignment]
        try:
            yield running, release, entered
        finally:
            release.set()


def onnx_outputs(version_dir: Path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Run the version's model.onnx directly with onnxruntime, outputs flattened to one row per item."""
    session = ort.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    arrays = session.run(None, {session.get_inputs()[0].name: inputs.astype(np.float32)})
    names = [o.name for o in session.get_outputs()]
    flat = [a.reshape(len(inputs)) if a.size == len(inputs) else a for a in arrays]
    return dict(zip(names, flat, strict=True))


def call(stub: pb_grpc.InferenceServiceStub, rpc: str, request: Any, timeout_s: float = 10.0) -> Any:
    """Call `rpc` on the stub."""
    return getattr(stub, rpc)(request, timeout=timeout_s)


def subprocess_env() -> dict[str, str]:
    """Environment for `python -m server` children: the repo and generated code importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "gen" / "python"), env.get("PYTHONPATH", "")])
    return env


def start_subprocess(model_dir: Path, ready_file: Path, *flags: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Run `python -m server` on free ports and wait for its ready file; returns (process, ports)."""
    command = [sys.executable, "-m", "server", "--grpc-port", "0", "--metrics-port", "0"]
    command += ["--model-dir", str(model_dir), "--ready-file", str(ready_file), *flags]
    process = subprocess.Popen(command, cwd=ROOT, env=subprocess_env(), stderr=subprocess.PIPE)
    try:
        return process, wait_ready_file(process, ready_file, timeout_s=30)
    except NotReadyError as exc:
        process.kill()
        raise NotReadyError(f"{exc}: {process.communicate()[1].decode()[-2000:]}") from None

"""--workers N: a supervisor running N server processes that share the gRPC port (SO_REUSEPORT)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from server.app import bind_failure
from server.ready import write_ready_file
from server.settings import ENV_PREFIX, Settings

log = logging.getLogger(__name__)
START_TIMEOUT_S = 120.0


def _reserve_port(host: str, port: int) -> socket.socket:
    """Bind (not listen) a SO_REUSEPORT socket so port 0 becomes one concrete port all workers share."""
    family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    holder = socket.socket(family, kind)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(address)
    return holder


def _worker_env(settings: Settings, index: int, grpc_port: int, ready_file: Path) -> dict[str, str]:
    """The worker's settings as DWCP_INFERENCE_* variables: the parent's, one port, one worker."""
    env = dict(os.environ)
    for field in dataclasses.fields(Settings):
        value = getattr(settings, field.name)
        env[ENV_PREFIX + field.name.upper()] = "" if value is None else str(value)
    metrics_port = settings.metrics_port + index if settings.metrics_port > 0 else settings.metrics_port
    overrides = {"WORKERS": "1", "REUSE_PORT": "1", "GRPC_PORT": str(grpc_port), "METRICS_PORT": str(metrics_port)}
    overrides["READY_FILE"] = str(ready_file)
    env.update({ENV_PREFIX + k: v for k, v in overrides.items()})
    return env


def run_workers(settings: Settings) -> int:
    """Start the workers, write the ready file once all are ready, forward SIGTERM/SIGHUP; returns the exit code."""
    try:
        holder = _reserve_port(settings.host, settings.grpc_port)
    except OSError as exc:
        log.error("cannot start: %s", bind_failure(settings.host, settings.grpc_port, "grpc_port", exc))
        return 1
    grpc_port = holder.getsockname()[1]
    stop = {"requested": False}

    def forward(signum: int, _frame: FrameType | None) -> None:
        stop["requested"] = stop["requested"] or signum != signal.SIGHUP
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    children: list[subprocess.Popen[bytes]] = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    with tempfile.TemporaryDirectory(prefix="dwcp-workers-") as scratch:
        ready_files = [Path(scratch) / f"worker-{i}.json" for i in range(settings.workers)]
        for i, ready in enumerate(ready_files):
            env = _worker_env(settings, i, grpc_port, ready)
            children.append(subprocess.Popen([sys.executable, "-m", "server"], env=env))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(f.exists() for f in ready_files):
            if stop["requested"] or any(c.poll() is not None for c in children) or time.monotonic() > deadline:
                log.error("a worker failed to start; stopping all")
                forward(signal.SIGTERM, None)
                return _wait(children, settings.grace_period_s) or 1
            time.sleep(0.05)
        workers = [json.loads(f.read_text()) for f in ready_files]
    holder.close()
    log.info(
        "%d workers serving on %s:%d: pids %s", len(children), settings.host, grpc_port, [w["pid"] for w in workers]
    )
    if settings.ready_file is not None:
        write_ready_file(settings.ready_file, grpc_port, workers[0]["metrics_port"], workers)
    while not stop["requested"]:
        if any(c.poll() is not None for c in children):
            log.error("a worker exited unexpectedly; stopping all")
            forward(signal.SIGTERM, None)
            _wait(children, settings.grace_period_s)
            return 1
        time.sleep(0.2)
    return _wait(children, settings.grace_period_s)


def _wait(children: list[subprocess.Popen[bytes]], grace_s: float) -> int:
    """Wait for the workers to drain; kill stragglers after the grace period. 0 when all exited cleanly."""
    deadline = time.monotonic() + grace_s + 5
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return max(abs(c.returncode) for c in children)

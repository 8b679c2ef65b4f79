"""The ready file: how a started server tells its parent (a test, a benchmark, a supervisor) it is serving.

The server writes it once every port is bound: {"grpc_port", "metrics_port", "pid"} and, with --workers,
each worker's own entry. Port 0 in the flags means "pick a free port"; this file is how the parent learns
which one. Kept free of gRPC and model imports so any parent can read it cheaply.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any


class NotReadyError(RuntimeError):
    """The server exited, or did not write its ready file in time."""


def write_ready_file(path: Path, grpc_port: int, metrics_port: int, workers: list[dict] | None = None) -> None:
    """Write the bound ports as JSON atomically (a reader sees the whole file or none)."""
    content: dict[str, object] = {"grpc_port": grpc_port, "metrics_port": metrics_port, "pid": os.getpid()}
    if workers is not None:
        content["workers"] = workers
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(content))
    os.replace(temporary, path)


def wait_ready_file(process: subprocess.Popen[Any], path: Path, timeout_s: float) -> dict[str, Any]:
    """The ready file's content once `process` has written it; NotReadyError if it exits or `timeout_s` passes.

    The process is left running on failure: the caller owns it and may want its output first.
    """
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if process.poll() is not None:
            raise NotReadyError(f"server exited with {process.returncode} before writing {path}")
        if time.monotonic() > deadline:
            raise NotReadyError(f"server did not write {path} within {timeout_s:g} s")
        time.sleep(0.05)
    return dict(json.loads(path.read_text()))

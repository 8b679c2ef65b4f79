"""Start the inference server (one or more processes sharing a port) or the echo server on loopback, and stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from server.ready import NotReadyError, wait_ready_file

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
READY_TIMEOUT_S = 120.0
TCP_ESTABLISHED = "01"  # the st column of /proc/net/tcp


@dataclass
class Running:
    """Processes serving one gRPC port on 127.0.0.1."""

    grpc_port: int
    pids: list[int]
    metrics_ports: list[int] = field(default_factory=list)  # -1 for a process without /metrics (echo)

    @property
    def target(self) -> str:
        """host:port for ghz and channels."""
        return f"{HOST}:{self.grpc_port}"

    def cpu_s(self) -> list[float]:
        """User + system CPU seconds each server process has used so far (Linux /proc), in `pids` order."""
        seconds = []
        for pid in self.pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))  # utime + stime
        return seconds

    def connections(self) -> list[int]:
        """Established TCP connections to the gRPC port each process holds now (Linux /proc), in `pids` order.

        With several processes on one port the kernel hands each new connection to one of them by a hash
        of its addresses and ports, so a few connections can land unevenly; this shows how they did.
        """
        established: set[str] = set()  # socket inodes
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == self.grpc_port and fields[3] == TCP_ESTABLISHED:
                    established.add(fields[9])
        return [len(_socket_inodes(pid) & established) for pid in self.pids]


def _socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets process `pid` has open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except FileNotFoundError:  # closed while listing
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    return inodes


def _wait_ready(process: subprocess.Popen[bytes], ready: Path, log: Path) -> dict[str, int]:
    try:
        return wait_ready_file(process, ready, READY_TIMEOUT_S)
    except NotReadyError as exc:
        raise NotReadyError(f"{exc}; log {log}:\n{log.read_text(errors='replace')[-2000:]}") from None


def stop_all(processes: Sequence[subprocess.Popen[bytes]], timeout_s: float = 15.0) -> None:
    """SIGTERM every process still running, wait for each up to `timeout_s`, then kill what is left."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "gen" / "python"), env.get("PYTHONPATH", "")])
    return env


@contextmanager
def serve(command: Sequence[str], processes: int, log_dir: Path) -> Iterator[Running]:
    """Run `command` (a server taking --grpc-port, --reuse-port, --ready-file) as `processes` processes on one port.

    The first process picks a free port; the others join it with SO_REUSEPORT, so the kernel spreads
    connections over them.
    """
    started: list[subprocess.Popen[bytes]] = []
    metrics_ports: list[int] = []
    port = 0
    try:
        with tempfile.TemporaryDirectory(prefix="dwcp-bench-") as scratch:
            for index in range(processes):
                ready = Path(scratch) / f"ready-{index}.json"
                log = log_dir / f"server-{index}.log"
                flags = ["--grpc-port", str(port), "--reuse-port", "1" if processes > 1 else "0"]
                with log.open("wb") as out:
                    process = subprocess.Popen(
                        [*command, *flags, "--ready-file", str(ready)],
                        cwd=ROOT,
                        env=_env(),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                started.append(process)
                info = _wait_ready(process, ready, log)
                port = int(info["grpc_port"])
                metrics_ports.append(int(info.get("metrics_port", -1)))
        yield Running(port, [p.pid for p in started], metrics_ports)
    finally:
        stop_all(started)


def server_command(model_dir: Path, extra: Sequence[str] = ()) -> list[str]:
    """`python -m server` on loopback with free metrics ports and the given model directory."""
    return [
        sys.executable,
        "-m",
        "server",
        "--host",
        HOST,
        "--metrics-port",
        "0",
        "--model-dir",
        str(model_dir),
        *extra,
    ]


def echo_command(extra: Sequence[str] = ()) -> list[str]:
    """The echo server (bench/echo_server.py): every RPC answered with as many bytes as its request."""
    return [sys.executable, "-m", "bench.echo_server", *extra]

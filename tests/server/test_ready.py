"""The ready file: written whole, read back by whoever started the server, with clear failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.ready import NotReadyError, wait_ready_file, write_ready_file


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_written_file_is_read_back_with_its_ports(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    write = f"from server.ready import write_ready_file as w; from pathlib import Path; w(Path({str(ready)!r}), 5, 6)"
    process = _python(f"import time; {write}; time.sleep(30)")
    try:
        content = wait_ready_file(process, ready, timeout_s=30)
    finally:
        process.kill()
        process.wait()
    assert content == {"grpc_port": 5, "metrics_port": 6, "pid": process.pid}
    assert [p.name for p in tmp_path.iterdir()] == ["ready.json"]  # no temporary file left behind


def test_a_process_that_exits_first_is_reported_with_its_exit_code(tmp_path: Path) -> None:
    process = _python("raise SystemExit(3)")
    with pytest.raises(NotReadyError, match="exited with 3"):
        wait_ready_file(process, tmp_path / "ready.json", timeout_s=30)


def test_a_process_that_never_writes_times_out_and_is_left_running(tmp_path: Path) -> None:
    process = _python("import time; time.sleep(30)")
    try:
        with pytest.raises(NotReadyError, match=r"within 0.3 s"):
            wait_ready_file(process, tmp_path / "ready.json", timeout_s=0.3)
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


def test_workers_are_listed_when_given(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    write_ready_file(ready, 7, 8, workers=[{"grpc_port": 7, "metrics_port": 9, "pid": 1}])
    assert '"workers": [{"grpc_port": 7' in ready.read_text()

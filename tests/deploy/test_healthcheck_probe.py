"""The image's HEALTHCHECK probe (server/healthcheck.py): exit 0 only when the server answers SERVING."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench.tiny_models import write_model_set
from server import healthcheck
from server.app import SERVICE_NAME
from tests.server.helpers import running_server


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serving_server_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_model_set(tmp_path)
    with running_server(tmp_path) as server:
        port = str(server.app.grpc_port)
        assert healthcheck.main(["--port", port]) == 0
        assert healthcheck.main(["--port", port, "--service", SERVICE_NAME]) == 0
        assert "SERVING" in capsys.readouterr().out
        # A service the server does not know is not healthy.
        assert healthcheck.main(["--port", port, "--service", "no.such.Service"]) == 1
        assert "NOT_FOUND" in capsys.readouterr().err


def test_not_serving_while_models_are_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_server(tmp_path) as server:  # an empty model directory: nothing to serve
        assert healthcheck.main(["--port", str(server.app.grpc_port)]) == 1
    assert "NOT_SERVING" in capsys.readouterr().err


def test_unreachable_server_fails_within_the_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    assert healthcheck.main(["--port", str(_closed_port()), "--timeout-s", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "UNAVAILABLE" in err or "DEADLINE_EXCEEDED" in err, err


def test_port_defaults_to_the_servers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DWCP_INFERENCE_GRPC_PORT", "50999")
    assert healthcheck.build_parser().parse_args([]).port == 50999
    monkeypatch.delenv("DWCP_INFERENCE_GRPC_PORT")
    assert healthcheck.build_parser().parse_args([]).port == 50051

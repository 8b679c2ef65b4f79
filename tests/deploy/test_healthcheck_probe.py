"""The health probe (server/healthcheck.py) against the real server: exit 0 only when it answers SERVING.

The probe takes the server's own flags and DWCP_INFERENCE_* variables, so each case gives it the
environment the server was configured with, as a HEALTHCHECK or an exec probe in the same container would.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.tiny_models import write_model_set
from server import healthcheck
from server.app import SERVICE_NAME
from server.settings import Settings
from tests.server.certs import TestCA
from tests.server.helpers import running_server

SERVICE_DNS_NAME = "dwcp-inference.dwcp.svc"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    write_model_set(directory)
    return directory


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Server certificates from a CA (one naming loopback, one naming only a Service), clients, a stranger CA."""
    directory = tmp_path_factory.mktemp("pki")
    ca, stranger = TestCA(), TestCA("stranger CA")
    files: dict[str, Path] = {"ca": ca.write(directory), "stranger_ca": stranger.write(directory, "stranger")}
    files["cert"], files["key"] = ca.issue().write(directory, "server")
    service_leaf = ca.issue(SERVICE_DNS_NAME, dns_names=(SERVICE_DNS_NAME,))
    files["service_cert"], files["service_key"] = service_leaf.write(directory, "service")
    files["probe_cert"], files["probe_key"] = ca.issue("health-probe").write(directory, "probe")
    files["stranger_cert"], files["stranger_key"] = stranger.issue("health-probe").write(directory, "stranger-probe")
    return files


def _env(port: int, **values: object) -> dict[str, str]:
    """The container's environment: DWCP_INFERENCE_GRPC_PORT and the given DWCP_INFERENCE_<NAME> variables."""
    env = {"DWCP_INFERENCE_GRPC_PORT": str(port)}
    env |= {f"DWCP_INFERENCE_{name.upper()}": str(value) for name, value in values.items()}
    return env


def _probe(env: dict[str, str], *argv: str) -> int:
    return healthcheck.main(list(argv), env)


@pytest.fixture()
def tls_server(models: Path, pki: dict[str, Path]) -> Iterator[int]:
    with running_server(models, tls_cert_file=pki["cert"], tls_key_file=pki["key"]) as server:
        yield server.app.grpc_port


def test_plaintext_serving_server_passes(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_server(models) as server:
        env = _env(server.app.grpc_port)
        assert _probe(env) == 0
        assert _probe(env, "--service", SERVICE_NAME) == 0
        assert "(plaintext)" in capsys.readouterr().out
        # A service the server does not know is not healthy.
        assert _probe(env, "--service", "no.such.Service") == 1
        assert "NOT_FOUND" in capsys.readouterr().err


def test_port_comes_from_the_servers_flag_or_environment(models: Path) -> None:
    with running_server(models) as server:
        port = str(server.app.grpc_port)
        assert _probe({}, "--grpc-port", port) == 0
        assert _probe({"DWCP_INFERENCE_GRPC_PORT": port}) == 0
        # The flag wins over the environment, as it does for the server.
        assert _probe({"DWCP_INFERENCE_GRPC_PORT": str(_closed_port())}, "--grpc-port", port, "--timeout-s", "1") == 0
        assert _probe({"DWCP_INFERENCE_GRPC_PORT": port, "DWCP_INFERENCE_PROBE_SERVICE": "no.such.Service"}) == 1


def test_not_serving_while_models_are_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_server(tmp_path) as server:  # an empty model directory: nothing to serve
        assert _probe(_env(server.app.grpc_port)) == 1
    assert "NOT_SERVING" in capsys.readouterr().err


def test_unreachable_server_fails_within_the_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    assert _probe(_env(_closed_port()), "--timeout-s", "0.5") == 1
    err = capsys.readouterr().err
    assert "UNAVAILABLE" in err or "DEADLINE_EXCEEDED" in err, err


def test_tls_probe_trusts_the_servers_own_chain_by_default(
    tls_server: int, pki: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # The chain file holds only the CA-issued leaf, and the probe is given nothing else: it pins that leaf.
    env = _env(tls_server, tls_cert_file=pki["cert"], tls_key_file=pki["key"])
    assert _probe(env) == 0
    assert "(TLS)" in capsys.readouterr().out
    assert _probe(env | {"DWCP_INFERENCE_PROBE_CA_FILE": str(pki["ca"])}) == 0


def test_tls_probe_refuses_a_server_its_ca_did_not_sign(
    tls_server: int, pki: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    env = _env(tls_server, tls_cert_file=pki["cert"], tls_key_file=pki["key"])
    assert _probe(env, "--probe-ca-file", str(pki["stranger_ca"])) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err
    # A probe told nothing about TLS speaks plaintext, which a TLS server does not answer.
    assert _probe(_env(tls_server)) == 1


def test_tls_probe_checks_the_name_in_the_certificate(models: Path, pki: dict[str, Path]) -> None:
    files = {"tls_cert_file": pki["service_cert"], "tls_key_file": pki["service_key"]}
    with running_server(models, **files) as server:
        env = _env(server.app.grpc_port, **files)
        assert _probe(env) == 1, "the certificate does not name 127.0.0.1, which the probe dials"
        assert _probe(env | {"DWCP_INFERENCE_PROBE_SERVER_NAME": SERVICE_DNS_NAME}) == 0
        assert _probe(env, "--probe-server-name", "other.dwcp.svc") == 1


def test_mutual_tls_probe_presents_its_own_client_certificate(
    models: Path, pki: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"tls_cert_file": pki["cert"], "tls_key_file": pki["key"], "tls_client_ca_file": pki["ca"]}
    with running_server(models, **files) as server:
        env = _env(server.app.grpc_port, **files)
        client = {"DWCP_INFERENCE_PROBE_CERT_FILE": str(pki["probe_cert"])}
        client["DWCP_INFERENCE_PROBE_KEY_FILE"] = str(pki["probe_key"])
        assert _probe(env | client) == 0
        assert _probe(env, "--probe-cert-file", str(pki["probe_cert"]), "--probe-key-file", str(pki["probe_key"])) == 0
        capsys.readouterr()

        # Without a client certificate the probe says what it needs instead of failing the handshake.
        assert _probe(env) == 1
        assert "DWCP_INFERENCE_PROBE_CERT_FILE" in capsys.readouterr().err
        stranger = ["--probe-cert-file", str(pki["stranger_cert"]), "--probe-key-file", str(pki["stranger_key"])]
        assert _probe(env, *stranger) == 1
        assert "UNAVAILABLE" in capsys.readouterr().err


def test_configuration_errors_exit_1_never_dockers_reserved_2(
    pki: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _probe({}, "--no-such-flag") == 1
    assert _probe({"DWCP_INFERENCE_GRPC_PORT": "70000"}) == 1
    assert _probe({}, "--probe-cert-file", str(pki["probe_cert"]), "--tls-cert-file", str(pki["cert"])) == 1
    assert "go together" in capsys.readouterr().err
    missing = tmp_path / "absent.crt"
    assert _probe({}, "--tls-cert-file", str(missing), "--tls-key-file", str(pki["key"])) == 1
    assert str(missing) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "dialled"),
    [("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("127.0.0.1", "127.0.0.1"), ("::1", "[::1]"), ("node-1", "node-1")],
)
def test_a_server_bound_to_every_address_is_dialled_on_loopback(host: str, dialled: str) -> None:
    assert healthcheck.target(Settings(host=host, grpc_port=50999)) == f"{dialled}:50999"

"""TLS and mutual TLS with certificates made in the test; when plaintext is allowed; message size limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from dwcp.inference.v1 import inference_pb2 as pb
from dwcp.inference.v1 import inference_pb2_grpc as pb_grpc
from server.security import SecurityConfigError, is_loopback, server_credentials
from server.settings import Settings
from tests.server.certs import Leaf, TestCA
from tests.server.helpers import ROOT, build_request, call, random_inputs, running_server, subprocess_env


def _detect(channel: grpc.Channel) -> pb.DetectAnomalyResponse:
    stub = pb_grpc.InferenceServiceStub(channel)
    return call(stub, "DetectAnomaly", build_request("DetectAnomaly", random_inputs("DetectAnomaly", 2)), 5.0)


def _tls_channel(port: int, ca: TestCA, client: Leaf | None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.cert_pem,
        private_key=client.key_pem if client else None,
        certificate_chain=client.cert_pem if client else None,
    )
    return grpc.secure_channel(f"localhost:{port}", credentials)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A CA, a server certificate, a client certificate it signed, and one from a stranger CA."""
    directory = tmp_path_factory.mktemp("pki")
    ca, stranger = TestCA(), TestCA("stranger CA")
    cert, key = ca.issue().write(directory, "server")
    return {
        "ca": ca,
        "ca_file": ca.write(directory),
        "cert": cert,
        "key": key,
        "client": ca.issue("dwcp-node-1"),
        "stranger": stranger.issue("dwcp-node-1"),
    }


def test_mutual_tls_serves_a_valid_client_and_refuses_every_other(model_dir: Path, pki: dict) -> None:
    files = {"tls_cert_file": pki["cert"], "tls_key_file": pki["key"], "tls_client_ca_file": pki["ca_file"]}
    with running_server(model_dir, **files) as running:
        port = running.app.grpc_port
        with _tls_channel(port, pki["ca"], pki["client"]) as channel:
            assert len(_detect(channel).results) == 2
        refused = {
            "no client certificate": _tls_channel(port, pki["ca"], None),
            "certificate from another CA": _tls_channel(port, pki["ca"], pki["stranger"]),
            "plaintext": grpc.insecure_channel(f"127.0.0.1:{port}"),
        }
        for why, channel in refused.items():
            with channel, pytest.raises(grpc.RpcError) as caught:
                _detect(channel)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, why
        with _tls_channel(port, pki["ca"], pki["client"]) as channel:  # refusals did not hurt the server
            assert len(_detect(channel).results) == 2


def test_tls_without_client_ca_serves_clients_without_certificates(model_dir: Path, pki: dict) -> None:
    with running_server(model_dir, tls_cert_file=pki["cert"], tls_key_file=pki["key"]) as running:
        with _tls_channel(running.app.grpc_port, pki["ca"], None) as channel:
            assert len(_detect(channel).results) == 2
        with grpc.insecure_channel(f"127.0.0.1:{running.app.grpc_port}") as channel, pytest.raises(grpc.RpcError):
            _detect(channel)


@pytest.mark.parametrize(
    ("overrides", "allowed"),
    [
        ({}, True),  # the default: plaintext on 127.0.0.1
        ({"host": "::1"}, True),
        ({"host": "localhost"}, True),
        ({"host": "0.0.0.0"}, False),
        ({"host": "10.1.2.3"}, False),
        ({"host": "0.0.0.0", "insecure": True}, True),  # plaintext chosen explicitly
        ({"tls_client_ca_file": Path("ca.crt")}, False),  # mTLS without a server certificate
        ({"tls_cert_file": Path("server.crt")}, False),  # no key
    ],
)
def test_plaintext_only_on_loopback_or_when_chosen(overrides: dict, allowed: bool, pki: dict) -> None:
    settings = Settings(**overrides)
    if allowed:
        assert server_credentials(settings) is None
    else:
        with pytest.raises(SecurityConfigError):
            server_credentials(settings)


def test_insecure_conflicts_with_tls_files_and_unreadable_files_are_named(pki: dict, tmp_path: Path) -> None:
    with pytest.raises(SecurityConfigError, match="conflicts"):
        server_credentials(Settings(tls_cert_file=pki["cert"], tls_key_file=pki["key"], insecure=True))
    with pytest.raises(SecurityConfigError, match="missing.crt"):
        server_credentials(Settings(tls_cert_file=tmp_path / "missing.crt", tls_key_file=pki["key"]))
    (tmp_path / "junk.crt").write_text("not a certificate")
    with pytest.raises(SecurityConfigError, match="not a PEM file"):
        server_credentials(Settings(tls_cert_file=tmp_path / "junk.crt", tls_key_file=pki["key"]))
    assert is_loopback("127.0.0.2") and not is_loopback("example.com")


def test_the_command_refuses_plaintext_on_a_public_address_with_a_clear_message() -> None:
    command = [sys.executable, "-m", "server", "--host", "0.0.0.0", "--grpc-port", "0", "--metrics-port", "-1"]
    done = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refusing to serve plaintext on 0.0.0.0" in done.stderr and "--insecure 1" in done.stderr


def test_an_oversized_message_is_refused_before_decoding_and_the_server_stays_up(model_dir: Path) -> None:
    with running_server(model_dir, max_receive_message_bytes=64 * 1024) as running:
        request = build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1))
        request.nodes[0].node_id = "x" * (128 * 1024)
        with pytest.raises(grpc.RpcError) as caught:
            call(running.stub, "DetectAnomaly", request)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len(_detect(running.channel).results) == 2


def test_the_default_size_limit_holds_the_largest_valid_batch_and_refuses_more(model_dir: Path) -> None:
    with running_server(model_dir) as running:
        largest = build_request("PredictBandwidth", random_inputs("PredictBandwidth", 1024))
        for link in largest.links:
            link.link_id = "l" * 256  # the longest id allowed
        assert largest.ByteSize() < Settings().max_receive_message_bytes
        assert len(call(running.stub, "PredictBandwidth", largest).predictions) == 1024
        huge = pb.DetectHighLatencyRequest(
            windows=[pb.LatencyWindow(cluster_id="c", consensus_latencies_ms=[1.0] * 20)] * 30_000
        )
        assert huge.ByteSize() > Settings().max_receive_message_bytes
        with pytest.raises(grpc.RpcError) as caught:
            call(running.stub, "DetectHighLatency", huge)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len(_detect(running.channel).results) == 2


def test_a_key_that_does_not_match_its_certificate_is_named_as_such(pki: dict, tmp_path: Path) -> None:
    _other_cert, other_key = pki["ca"].issue("someone-else").write(tmp_path, "other")
    with pytest.raises(SecurityConfigError, match="does not match the certificate") as refused:
        server_credentials(Settings(tls_cert_file=pki["cert"], tls_key_file=other_key))
    assert str(other_key) in str(refused.value) and str(pki["cert"]) in str(refused.value)
    server_credentials(Settings(tls_cert_file=pki["cert"], tls_key_file=pki["key"]))  # the matching pair loads
    # The command says it too, instead of grpcio's "Failed to bind to address".
    command = [sys.executable, "-m", "server", "--grpc-port", "0", "--metrics-port", "-1"]
    command += ["--tls-cert-file", str(pki["cert"]), "--tls-key-file", str(other_key)]
    done = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "does not match the certificate" in done.stderr, done.stderr[-2000:]
    assert "Failed to bind" not in done.stderr

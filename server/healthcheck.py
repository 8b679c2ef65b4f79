"""`python -m server.healthcheck`: a grpc.health.v1 probe for container HEALTHCHECKs; exit 0 only when SERVING.

The probe reads the server's own flags and DWCP_INFERENCE_* variables (server/settings.py), so it dials the
port and speaks the transport the server was configured with: plaintext, TLS when --tls-cert-file is set,
mutual TLS when --tls-client-ca-file is set too. What it trusts and which certificate it presents are the
probe's own settings (DWCP_INFERENCE_PROBE_*), described in docs/deploy.md "TLS and the health probe":

- it verifies the server's certificate against --probe-ca-file, or by default against the server's own
  chain file (--tls-cert-file): the probe then accepts exactly the certificate the server was given;
- it checks the name --probe-server-name in that certificate, by default the address it dials;
- under mutual TLS it presents --probe-cert-file/--probe-key-file, a client certificate the client CA
  signed; it never presents the server's own key unless told to with those two flags.

Every failure, a usage or configuration error included, exits 1: Docker reserves exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.settings import ENV_PREFIX, Settings, load_settings

PROBE_ENV_PREFIX = ENV_PREFIX + "PROBE_"
# Bind-all addresses: a server bound to one of these is dialled on loopback, from inside its container.
WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


class ProbeConfigError(ValueError):
    """The probe's settings are incomplete or name a file it cannot read."""


def _doc(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class ProbeSettings:
    """The probe's own settings; each is a flag `--field-name` and env DWCP_INFERENCE_PROBE_<NAME>."""

    service: str = field(default="", metadata=_doc("Service to ask about; empty is the whole server."))
    timeout_s: float = field(default=2.0, metadata=_doc("Deadline of the check in seconds."))
    probe_ca_file: Path | None = field(
        default=None,
        metadata=_doc("PEM CA bundle that verifies the server's certificate; unset trusts --tls-cert-file itself."),
    )
    probe_server_name: str = field(
        default="", metadata=_doc("Name the server's certificate must carry; empty checks the dialled address.")
    )
    probe_cert_file: Path | None = field(
        default=None, metadata=_doc("PEM client certificate for mutual TLS, signed by the server's client CA.")
    )
    probe_key_file: Path | None = field(default=None, metadata=_doc("PEM private key of --probe-cert-file."))


def _probe_env_name(name: str) -> str:
    return PROBE_ENV_PREFIX + name.removeprefix("probe_").upper()


def _convert(kind: object, text: str) -> object:
    if kind in (float, "float"):
        return float(text)
    if kind == "Path | None":
        return Path(text) if text else None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The probe's own flags; every other flag is the server's (`python -m server --help`)."""
    parser = argparse.ArgumentParser(
        prog="python -m server.healthcheck",
        description="Ask a running server's grpc.health.v1 service; exit 0 when SERVING, 1 otherwise. "
        "It also takes every flag and DWCP_INFERENCE_* variable of `python -m server` (port, host, TLS files), "
        "so it dials the server the way that server was configured.",
        # Never read an abbreviation of a server flag as one of the probe's.
        allow_abbrev=False,
    )
    for f in dataclasses.fields(ProbeSettings):
        help_text = f"{f.metadata['help']} [env {_probe_env_name(f.name)}; default {f.default!r}]"

        def parse(text: str, kind: object = f.type) -> object:
            return _convert(kind, text)

        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, dest=f.name, type=parse, default=None, help=help_text, metavar=f.name.upper())
    return parser


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> tuple[ProbeSettings, Settings]:
    """(the probe's settings, the server's settings) from flags and environment; flags win."""
    environ = os.environ if environ is None else environ
    known, server_argv = build_parser().parse_known_args(argv)
    values: dict[str, object] = {}
    for f in dataclasses.fields(ProbeSettings):
        if getattr(known, f.name) is not None:
            values[f.name] = getattr(known, f.name)
        elif _probe_env_name(f.name) in environ:
            values[f.name] = _convert(f.type, environ[_probe_env_name(f.name)])
    return ProbeSettings(**values), load_settings(server_argv, environ)  # type: ignore[arg-type]


def target(settings: Settings) -> str:
    """The address the probe dials: the server's --host, or loopback when the server binds every address."""
    host = "127.0.0.1" if settings.host in WILDCARD_HOSTS else settings.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"{host}:{settings.grpc_port}"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ProbeConfigError(f"{what} {path}: {exc.strerror or exc}") from None


def channel_credentials(probe: ProbeSettings, settings: Settings) -> grpc.ChannelCredentials | None:
    """TLS credentials matching the server's transport, or None when the server serves plaintext."""
    if settings.tls_cert_file is None:
        return None
    if probe.probe_ca_file is not None:
        roots = _read(probe.probe_ca_file, f"--probe-ca-file ({_probe_env_name('probe_ca_file')})")
    else:
        roots = _read(settings.tls_cert_file, f"--tls-cert-file ({ENV_PREFIX}TLS_CERT_FILE), trusted by the probe,")
    if (probe.probe_cert_file is None) != (probe.probe_key_file is None):
        raise ProbeConfigError("--probe-cert-file and --probe-key-file go together")
    if settings.tls_client_ca_file is not None and probe.probe_cert_file is None:
        raise ProbeConfigError(
            "the server requires client certificates (--tls-client-ca-file): give the probe one with "
            f"{_probe_env_name('probe_cert_file')} and {_probe_env_name('probe_key_file')} "
            "(--probe-cert-file/--probe-key-file)"
        )
    if probe.probe_cert_file is None or probe.probe_key_file is None:
        return grpc.ssl_channel_credentials(root_certificates=roots)
    return grpc.ssl_channel_credentials(
        root_certificates=roots,
        private_key=_read(probe.probe_key_file, "--probe-key-file"),
        certificate_chain=_read(probe.probe_cert_file, "--probe-cert-file"),
    )


def check(probe: ProbeSettings, settings: Settings) -> tuple[bool, str]:
    """Ask the health service once; returns (serving, a one-line description of the answer)."""
    address = target(settings)
    credentials = channel_credentials(probe, settings)
    if credentials is None:
        channel = grpc.insecure_channel(address)
    else:
        options = [("grpc.ssl_target_name_override", probe.probe_server_name)] if probe.probe_server_name else []
        channel = grpc.secure_channel(address, credentials, options=options)
    transport = "plaintext" if credentials is None else "TLS"
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=probe.service), timeout=probe.timeout_s)
        except grpc.RpcError as exc:
            return False, f"{address} ({transport}): {exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    return serving, f"{address} ({transport}) service {probe.service!r}: {status}"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run one check and print its answer; the exit code is what a HEALTHCHECK or exec probe reads."""
    try:
        probe, settings = load(argv, environ)
        serving, message = check(probe, settings)
    except SystemExit as exc:  # argparse: --help exits 0, a usage error 2, which Docker reserves
        return 0 if exc.code in (0, None) else 1
    except ValueError as exc:  # ProbeConfigError, or the server's settings refusing a value
        serving, message = False, f"health probe not run: {exc}"
    print(message, file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())

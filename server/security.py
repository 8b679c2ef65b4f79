"""Transport security: TLS or mutual TLS from files, and when plaintext is allowed at all."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from server.settings import Settings


class SecurityConfigError(ValueError):
    """The TLS settings are incomplete, unreadable, or would serve plaintext where it is not allowed."""


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SecurityConfigError(f"{what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise SecurityConfigError(f"{what} {path}: not a PEM file")
    return data


def _check_key_matches(chain: bytes, key: bytes, cert_path: Path, key_path: Path | None) -> None:
    """Refuse a private key that is not the key of the chain's first (leaf) certificate, naming both files."""
    try:
        leaf = x509.load_pem_x509_certificates(chain)[0]
    except ValueError as exc:
        raise SecurityConfigError(f"--tls-cert-file {cert_path}: not a PEM certificate ({exc})") from None
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise SecurityConfigError(f"--tls-key-file {key_path}: not an unencrypted PEM private key ({exc})") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if private.public_key().public_bytes(der, public) != leaf.public_key().public_bytes(der, public):
        raise SecurityConfigError(
            f"--tls-key-file {key_path} does not match the certificate in --tls-cert-file {cert_path} "
            f"(subject {leaf.subject.rfc4514_string()}): give the key that certificate was issued for"
        )


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The server's TLS credentials, or None for plaintext; refuses plaintext off loopback unless --insecure 1.

    With --tls-client-ca-file the server requires a client certificate signed by that CA (mutual TLS).
    """
    s = settings
    if s.tls_cert_file is None:
        if s.tls_client_ca_file is not None:
            raise SecurityConfigError("--tls-client-ca-file needs --tls-cert-file and --tls-key-file (mutual TLS)")
        if not s.insecure and not is_loopback(s.host):
            raise SecurityConfigError(
                f"refusing to serve plaintext on {s.host}: give --tls-cert-file and --tls-key-file, "
                "or choose plaintext explicitly with --insecure 1"
            )
        return None
    if s.insecure:
        raise SecurityConfigError("--insecure 1 conflicts with --tls-cert-file; choose one")
    chain = _read(s.tls_cert_file, "--tls-cert-file")
    key = _read(s.tls_key_file, "--tls-key-file") if s.tls_key_file is not None else None
    if key is None:
        raise SecurityConfigError("--tls-cert-file needs --tls-key-file")
    _check_key_matches(chain, key, s.tls_cert_file, s.tls_key_file)  # grpcio would say only "Failed to bind"
    if s.tls_client_ca_file is None:
        return grpc.ssl_server_credentials([(key, chain)])
    client_ca = _read(s.tls_client_ca_file, "--tls-client-ca-file")
    return grpc.ssl_server_credentials([(key, chain)], root_certificates=client_ca, require_client_auth=True)


def describe(settings: Settings) -> str:
    """How the gRPC port is secured, for the start-up log line."""
    if settings.tls_cert_file is None:
        return "plaintext"
    return "mutual TLS" if settings.tls_client_ca_file is not None else "TLS"

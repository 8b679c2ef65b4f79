"""Ed25519 signatures of a version's seal: key files, signing, and checking against trusted keys."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from artifacts.schema import ArtifactError

PEM_PUBLIC_BEGIN = "-----BEGIN PUBLIC KEY-----"

# Reasons an untrusted version is refused, the `reason` label of dwcp_inference_model_untrusted_total.
UNSIGNED = "unsigned"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"


class UntrustedError(ArtifactError):
    """A version whose seal is not signed by a trusted key; `reason` is one of the constants above."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of the sha256 of its raw 32 bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM (PKCS#8, unencrypted) file; ValueError naming the file otherwise."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_trusted_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    """Every Ed25519 public key (PEM blocks, one after another) in a file, by key id; ValueError if none."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from None
    keys: dict[str, Ed25519PublicKey] = {}
    for i, block in enumerate(text.split(PEM_PUBLIC_BEGIN)[1:]):
        try:
            key = serialization.load_pem_public_key((PEM_PUBLIC_BEGIN + block).encode())
        except ValueError as exc:
            raise ValueError(f"{path}: public key {i + 1} is not valid PEM ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path}: public key {i + 1} is a {type(key).__name__}, not Ed25519")
        keys[key_id(key)] = key
    if not keys:
        raise ValueError(f"{path}: no PEM public key ({PEM_PUBLIC_BEGIN}) in the file")
    return keys


def public_pem(key: Ed25519PrivateKey) -> bytes:
    """The PEM public key of a private key, as a trusted-keys file holds it."""
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """The unencrypted PKCS#8 PEM of a private key, as --signing-key-file reads it."""
    pkcs8, plain = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, plain)


@dataclass(frozen=True)
class Signature:
    """One signature of a seal: which key made it and the 64 signature bytes."""

    key_id: str
    signature: bytes

    def to_json(self) -> dict[str, str]:
        """The seal's `signatures[]` entry."""
        return {"key_id": self.key_id, "ed25519": base64.b64encode(self.signature).decode()}

    @classmethod
    def from_json(cls, raw: Any, where: str) -> Signature:
        """A `signatures[]` entry; ArtifactError naming `where` when it is malformed."""
        try:
            return cls(str(raw["key_id"]), base64.b64decode(raw["ed25519"], validate=True))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{where}: not a {{key_id, ed25519}} signature ({exc})") from None


def sign(payload: bytes, key: Ed25519PrivateKey) -> Signature:
    """Sign the canonical seal bytes."""
    return Signature(key_id(key.public_key()), key.sign(payload))


def verify(payload: bytes, signatures: list[Signature], trusted: dict[str, Ed25519PublicKey], where: str) -> str:
    """The id of a trusted key that signed `payload`; UntrustedError (unsigned, unknown key, bad) otherwise."""
    if not signatures:
        raise UntrustedError(f"{where}: unsigned; the server serves only versions a trusted key signed", UNSIGNED)
    known = [s for s in signatures if s.key_id in trusted]
    if not known:
        ids = ", ".join(s.key_id for s in signatures)
        raise UntrustedError(f"{where}: signed by {ids}, none of them a trusted key", UNKNOWN_KEY)
    for s in known:
        try:
            trusted[s.key_id].verify(s.signature, payload)
            return s.key_id
        except InvalidSignature:
            continue
    raise UntrustedError(f"{where}: the signature of key {known[0].key_id} does not match the files", BAD_SIGNATURE)

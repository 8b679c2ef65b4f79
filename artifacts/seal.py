"""A version's seal (seal.json): the sha256 of each of its files, optionally signed with Ed25519.

The seal makes a version one unit: the server refuses a version whose manifest or model differs from what
the writer sealed (docs/artifacts.md). Run `python -m artifacts.seal --help` to (re)seal existing versions
or make a signing key.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artifacts.paths import inside
from artifacts.schema import MANIFEST_FILE, ArtifactError
from artifacts.signing import Signature, UntrustedError, sign, verify

SEAL_FILE = "seal.json"
SEAL_VERSION = 1

if TYPE_CHECKING:  # cryptography's key classes, for annotations only
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value that is hashed and signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    """Lower-case hex sha256."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Seal:
    """The sealed file digests (file name -> sha256 hex) and the signatures of their canonical form."""

    files: dict[str, str]
    signatures: tuple[Signature, ...] = ()

    def payload(self) -> bytes:
        """What a signature signs: the seal without its signatures, canonical JSON."""
        return canonical_json({"seal_version": SEAL_VERSION, "files": self.files})

    def signed(self, key: Ed25519PrivateKey) -> Seal:
        """This seal with one more signature, by `key`."""
        return Seal(self.files, (*self.signatures, sign(self.payload(), key)))

    def to_json(self) -> dict[str, Any]:
        """The seal.json document."""
        signatures = [s.to_json() for s in self.signatures]
        return {"seal_version": SEAL_VERSION, "files": self.files, "signatures": signatures}


def seal_of(files: dict[str, bytes], key: Ed25519PrivateKey | None = None) -> Seal:
    """The seal of these files (name -> content), signed by `key` when given."""
    seal = Seal({name: sha256_hex(data) for name, data in sorted(files.items())})
    return seal.signed(key) if key is not None else seal


def seal_bytes(seal: Seal) -> bytes:
    """seal.json's content as written."""
    return (json.dumps(seal.to_json(), indent=2) + "\n").encode()


def read_seal(version_dir: Path) -> Seal:
    """Parse `<version_dir>/seal.json`; ArtifactError naming the file when it is missing or malformed."""
    path = inside(version_dir, SEAL_FILE, str(Path(version_dir) / SEAL_FILE))
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ArtifactError(
            f"{path}: missing; the version is not sealed (seal it with `python -m artifacts.seal reseal "
            f"{version_dir}` after checking it, see docs/artifacts.md)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: cannot read JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("seal_version") != SEAL_VERSION:
        raise ArtifactError(f"{path}: not a seal_version {SEAL_VERSION} object")
    files = raw.get("files")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ArtifactError(f"{path}.files: expected a file name -> sha256 map")
    raw_signatures = raw.get("signatures", [])
    if not isinstance(raw_signatures, list):
        raise ArtifactError(f"{path}.signatures: expected a list")
    signatures = tuple(Signature.from_json(s, f"{path}.signatures[{i}]") for i, s in enumerate(raw_signatures))
    return Seal(dict(files), signatures)


def check_trusted(seal: Seal, trusted: dict[str, Ed25519PublicKey] | None, version_dir: Path) -> None:
    """Refuse (UntrustedError) a seal no trusted key signed; every seal passes when `trusted` is None."""
    if trusted is not None:
        verify(seal.payload(), list(seal.signatures), trusted, str(Path(version_dir) / SEAL_FILE))


def read_sealed_file(version_dir: Path, seal: Seal, name: str, where: str) -> bytes:
    """A file of the version, after checking its name stays inside and its bytes match the seal."""
    path = inside(version_dir, name, where)
    expected = seal.files.get(name)
    if expected is None:
        raise ArtifactError(f"{where}: {name!r} is not in {SEAL_FILE}; the seal must cover every file served")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read ({exc})") from None
    if sha256_hex(data) != expected.lower():
        raise ArtifactError(
            f"{path}: sha256 {sha256_hex(data)} differs from {SEAL_FILE}'s {expected}; the file was changed after "
            "the version was sealed"
        )
    return data


def write_seal(version_dir: Path, seal: Seal) -> Path:
    """Write seal.json into an existing version directory atomically (a temporary name, then rename)."""
    final = inside(version_dir, SEAL_FILE, str(version_dir))
    tmp = Path(version_dir) / f".{SEAL_FILE}.tmp"
    tmp.write_bytes(seal_bytes(seal))
    os.replace(tmp, final)
    return final


def reseal(version_dir: Path, key: Ed25519PrivateKey | None = None, force: bool = False) -> Seal:
    """Seal an existing version after checking it: manifest valid, its model's sha256 matching.

    A version already sealed keeps its seal unless the seal still matches (then it is re-signed) or `force`.
    """
    from artifacts.read import parse_manifest

    where = str(Path(version_dir) / MANIFEST_FILE)
    manifest_bytes = inside(version_dir, MANIFEST_FILE, where).read_bytes()
    manifest = parse_manifest(json.loads(manifest_bytes), where)
    model_bytes = inside(version_dir, manifest.onnx_file, f"{where}.onnx.file").read_bytes()
    if sha256_hex(model_bytes) != manifest.onnx_sha256:
        raise ArtifactError(f"{version_dir}: {manifest.onnx_file}'s sha256 differs from the manifest's; not sealed")
    seal = seal_of({MANIFEST_FILE: manifest_bytes, manifest.onnx_file: model_bytes})
    if (Path(version_dir) / SEAL_FILE).exists() and not force:
        old = read_seal(version_dir)
        if old.files != seal.files:
            raise ArtifactError(f"{version_dir}: its files differ from its seal; pass --force to seal them as they are")
    write_seal(version_dir, seal.signed(key) if key is not None else seal)
    return seal


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m artifacts.seal`: reseal versions, or make an Ed25519 key pair."""
    from artifacts.signing import load_signing_key, private_pem, public_pem

    parser = argparse.ArgumentParser(prog="python -m artifacts.seal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sealing = commands.add_parser("reseal", help="check and (re)write seal.json of version directories")
    sealing.add_argument("version_dirs", nargs="+", type=Path, metavar="VERSION_DIR", help="e.g. models/*/*")
    sealing.add_argument("--signing-key-file", type=Path, help="Ed25519 PEM private key to sign the seals with")
    sealing.add_argument("--force", action="store_true", help="seal files that differ from their existing seal")
    keygen = commands.add_parser("keygen", help="write a new Ed25519 key pair (PEM)")
    keygen.add_argument("--private-key-file", type=Path, required=True, help="where the private key goes (0600)")
    keygen.add_argument("--public-key-file", type=Path, required=True, help="where the public key goes")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        new_key = Ed25519PrivateKey.generate()
        fd = os.open(args.private_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem(new_key))
        args.public_key_file.write_bytes(public_pem(new_key))
        return 0
    key = load_signing_key(args.signing_key_file) if args.signing_key_file else None
    failed = 0
    for version_dir in args.version_dirs:
        try:
            reseal(version_dir, key, args.force)
            print(f"sealed {version_dir}" + (" (signed)" if key else ""))
        except (ArtifactError, OSError, ValueError) as exc:
            print(f"not sealed: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


__all__ = ["SEAL_FILE", "Seal", "UntrustedError", "check_trusted", "read_seal", "read_sealed_file", "seal_of"]

if __name__ == "__main__":
    sys.exit(main())

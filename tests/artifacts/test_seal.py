"""A version is one sealed unit: an edited manifest, an escaping path or a widened range is refused on load."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from artifacts.read import read_version
from artifacts.schema import ArtifactError
from artifacts.seal import SEAL_FILE, main, reseal, seal_of, write_seal
from artifacts.signing import UntrustedError, key_id, private_pem, public_pem
from bench.tiny_models import DEFAULT_VERSION, write_version
from server.metrics import Metrics
from server.store import ModelStore

NEW = "20260201T000000Z"
MODEL = "reliability_detector"


def _edit(version_dir: Path, change: Callable[[dict], None], reseal_after: bool = False) -> None:
    path = version_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2))
    if reseal_after:  # a writer that sealed what it wrote: only the manifest's own checks can refuse it
        write_seal(version_dir, seal_of({p.name: p.read_bytes() for p in version_dir.iterdir() if p.name != SEAL_FILE}))


def _swap_first_two_features(manifest: dict) -> None:
    features = manifest["inputs"][0]["features"]
    features[0], features[1] = features[1], features[0]


def _store(model_dir: Path, trusted: dict | None = None) -> tuple[ModelStore, CollectorRegistry]:
    registry = CollectorRegistry()
    return ModelStore(model_dir, Metrics(registry, 0.01), trusted_keys=trusted), registry


@pytest.fixture
def versions(tmp_path: Path) -> tuple[Path, Path]:
    """A model directory with a served version of reliability_detector and a newer one a test may edit."""
    model_dir = tmp_path / "models"
    write_version(model_dir, MODEL)
    return model_dir, write_version(model_dir, MODEL, NEW, seed=1)


def test_an_edited_manifest_is_refused_with_a_log_line_and_the_old_version_keeps_serving(
    versions: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    model_dir, new = versions
    _edit(new, _swap_first_two_features)  # same ONNX, sha256 still right: only the seal notices
    store, registry = _store(model_dir)
    with caplog.at_level(logging.ERROR, logger="server.store"):
        store.reload()
    assert [m.version for m in store.models()] == [DEFAULT_VERSION]
    refused = [r.message for r in caplog.records if "changed after the version was sealed" in r.message]
    assert len(refused) == 1 and "manifest.json" in refused[0]
    assert registry.get_sample_value("dwcp_inference_model_reloads_total", {"model": MODEL, "result": "failure"}) == 1


def test_an_unsealed_version_is_refused(versions: tuple[Path, Path]) -> None:
    (versions[1] / SEAL_FILE).unlink()
    with pytest.raises(ArtifactError, match="not sealed"):
        read_version(versions[1])


@pytest.mark.parametrize(
    "onnx_file", ["../../../../etc/passwd", f"../{DEFAULT_VERSION}/model.onnx", "/etc/passwd", "sub/model.onnx", ".."]
)
def test_a_model_path_outside_its_version_directory_is_refused_before_it_is_read(
    versions: tuple[Path, Path], onnx_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = versions[1]
    _edit(new, lambda m: m["onnx"].update(file=onnx_file), reseal_after=True)
    opened: list[str] = []
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        opened.append(str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(ArtifactError, match="is not a file name inside the version directory"):
        read_version(new)
    assert all(Path(p).parent == new for p in opened), opened  # nothing outside the directory was read


def test_a_symlinked_model_is_refused(versions: tuple[Path, Path]) -> None:
    model_dir, new = versions
    (new / "model.onnx").unlink()
    os.symlink(model_dir / MODEL / DEFAULT_VERSION / "model.onnx", new / "model.onnx")
    with pytest.raises(ArtifactError, match="is a symlink"):
        read_version(new)


@pytest.mark.parametrize(("feature", "key", "value"), [(0, "max", 1e30), (4, "min", -1.0), (1, "max", 2.0)])
def test_a_range_wider_than_the_proto_states_is_refused(
    versions: tuple[Path, Path], feature: int, key: str, value: float
) -> None:
    new = versions[1]
    _edit(new, lambda m: m["inputs"][0]["features"][feature].update({key: value}), reseal_after=True)
    with pytest.raises(ArtifactError, match=f"features\\[{feature}\\].{key}: .* outside the proto's range"):
        read_version(new)


def test_a_feature_that_is_no_request_field_is_refused(versions: tuple[Path, Path]) -> None:
    _edit(versions[1], lambda m: m["inputs"][0]["features"][0].update(name="uptime_ratio"), reseal_after=True)
    with pytest.raises(ArtifactError, match="'uptime_ratio' is not a request field with a stated range"):
        read_version(versions[1])


def test_with_trusted_keys_only_versions_signed_by_one_are_served(versions: tuple[Path, Path]) -> None:
    model_dir, new = versions
    ours, theirs = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    trusted = {key_id(ours.public_key()): ours.public_key()}
    reseal(model_dir / MODEL / DEFAULT_VERSION, ours)
    reseal(new, theirs)  # signed, by a key the server does not trust
    store, registry = _store(model_dir, trusted)
    store.reload()
    assert [m.version for m in store.models()] == [DEFAULT_VERSION]
    assert registry.get_sample_value("dwcp_inference_model_untrusted_total", {"model": MODEL, "reason": "unknown_key"})
    reseal(new, ours)  # re-signed by ours: now served
    store.reload()
    assert [m.version for m in store.models()] == [NEW]


def test_an_unsigned_or_forged_seal_is_untrusted(versions: tuple[Path, Path]) -> None:
    new = versions[1]
    key = Ed25519PrivateKey.generate()
    trusted = {key_id(key.public_key()): key.public_key()}
    with pytest.raises(UntrustedError, match="unsigned") as unsigned:
        read_version(new, trusted)
    assert unsigned.value.reason == "unsigned"
    reseal(new, key)
    seal = json.loads((new / SEAL_FILE).read_text())
    seal["files"]["manifest.json"] = "0" * 64  # a forger who rewrote the digests cannot re-sign them
    (new / SEAL_FILE).write_text(json.dumps(seal))
    with pytest.raises(UntrustedError, match="does not match") as forged:
        read_version(new, trusted)
    assert forged.value.reason == "bad_signature"


def test_reseal_refuses_a_version_whose_files_differ_from_its_seal(versions: tuple[Path, Path]) -> None:
    new = versions[1]
    _edit(new, _swap_first_two_features)
    assert main(["reseal", str(new)]) == 1  # the swap is not blessed by accident
    assert main(["reseal", "--force", str(new)]) == 0
    read_version(new)


def test_keygen_writes_a_pair_that_signs_and_verifies(versions: tuple[Path, Path], tmp_path: Path) -> None:
    private, public = tmp_path / "key.pem", tmp_path / "key.pub"
    assert main(["keygen", "--private-key-file", str(private), "--public-key-file", str(public)]) == 0
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    assert main(["reseal", "--signing-key-file", str(private), str(versions[1])]) == 0
    from artifacts.signing import load_signing_key, load_trusted_keys

    assert public_pem(load_signing_key(private)) == public.read_bytes()
    assert private_pem(load_signing_key(private)).startswith(b"-----BEGIN PRIVATE KEY-----")
    read_version(versions[1], load_trusted_keys(public))

"""Every reason a model version is refused, one test id each, through the server's own load path.

Each case writes a served version and a newer one broken in exactly one way, has the ModelStore reload,
and asserts the newer version is refused with a log line naming the reason, counted once as a failure,
while the older version keeps serving. docs/artifacts.md ("Why a version is refused") lists the same ids;
`test_the_doc_lists_every_reason` keeps the two equal. That the old version also keeps answering RPCs is
tests/server/test_store.py::test_a_broken_new_version_is_rejected_and_the_old_one_keeps_serving.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from artifacts.seal import SEAL_FILE, reseal, seal_of, write_seal
from artifacts.signing import key_id
from bench.tiny_models import DEFAULT_VERSION, write_version
from server.metrics import Metrics
from server.store import ModelStore
from tests.server.helpers import ROOT

NEW = "20260201T000000Z"
DOC = ROOT / "docs" / "artifacts.md"
Break = Callable[[Path, Ed25519PrivateKey], None]  # (the new version's directory, the trusted key)


@dataclass(frozen=True)
class Reason:
    """One way a version is refused: how to break a version so, and what the refusal must say."""

    id: str
    breaks: Break
    says: str  # a regular expression the rejection log line must match
    model: str = "reliability_detector"
    signed: bool = False  # the server trusts a key (--trusted-keys-file), which signed the served version
    untrusted: str | None = None  # the dwcp_inference_model_untrusted_total reason, if any


def _manifest(change: Callable[[dict[str, Any]], None]) -> Break:
    """Edit manifest.json and seal the result again, so only the edit itself is judged."""

    def breaks(version: Path, _key: Ed25519PrivateKey) -> None:
        raw = json.loads((version / "manifest.json").read_text())
        change(raw)
        (version / "manifest.json").write_text(json.dumps(raw))
        _reseal(version)

    return breaks


def _reseal(version: Path) -> None:
    write_seal(version, seal_of({p.name: p.read_bytes() for p in version.iterdir() if p.name != SEAL_FILE}))


def _seal(change: Callable[[dict[str, Any]], Any]) -> Break:
    """Edit seal.json (the change may return a replacement document)."""

    def breaks(version: Path, _key: Ed25519PrivateKey) -> None:
        raw = json.loads((version / SEAL_FILE).read_text())
        replaced = change(raw)
        (version / SEAL_FILE).write_text(json.dumps(raw if replaced is None else replaced))

    return breaks


def _unlink(name: str) -> Break:
    return lambda version, _key: (version / name).unlink()


def _write(name: str, text: str, sealed: bool = False) -> Break:
    """Replace a file's content; `sealed`: and seal the result, so the content itself is judged."""

    def breaks(version: Path, _key: Ed25519PrivateKey) -> None:
        (version / name).write_text(text)
        if sealed:
            _reseal(version)

    return breaks


def _append(name: str, extra: bytes) -> Break:
    """Change a file after the version was sealed."""

    def breaks(version: Path, _key: Ed25519PrivateKey) -> None:
        (version / name).write_bytes((version / name).read_bytes() + extra)

    return breaks


def _unsigned(version: Path, _key: Ed25519PrivateKey) -> None:
    """Nothing to break: a version as written is sealed but unsigned."""


def _symlink(name: str) -> Break:
    """Replace a file of the version by a link to the served version's same file."""

    def breaks(version: Path, _key: Ed25519PrivateKey) -> None:
        (version / name).unlink()
        os.symlink(version.parent / DEFAULT_VERSION / name, version / name)

    return breaks


def _input(change: Callable[[dict[str, Any]], None]) -> Break:
    return _manifest(lambda m: change(m["inputs"][0]))


def _feature(index: int, **values: Any) -> Break:
    return _input(lambda i: i["features"][index].update(values))


def _signed_by_other_key(version: Path, _key: Ed25519PrivateKey) -> None:
    reseal(version, Ed25519PrivateKey.generate())


def _forged(version: Path, key: Ed25519PrivateKey) -> None:
    reseal(version, key)
    seal = json.loads((version / SEAL_FILE).read_text())
    seal["files"]["model.onnx"] = "0" * 64  # rewritten digests that the signature no longer covers
    (version / SEAL_FILE).write_text(json.dumps(seal))


def _rpc_of_another_model(version: Path, _key: Ed25519PrivateKey) -> None:
    """The newer version is a compression_selector graph under reliability_detector's name."""
    shutil.rmtree(version)
    other = write_version(version.parent.parent / ".other", "compression_selector", NEW)
    shutil.move(other, version)
    _manifest(lambda m: m.update(name="reliability_detector"))(version, _key)


def _garbage_onnx(version: Path, _key: Ed25519PrivateKey) -> None:
    garbage = b"not an onnx graph" * 10
    (version / "model.onnx").write_bytes(garbage)
    _manifest(lambda m: m["onnx"].update(sha256=seal_of({"g": garbage}).files["g"]))(version, _key)


def _drop_seal_entry(name: str) -> Break:
    def drop(seal: dict[str, Any]) -> None:
        del seal["files"][name]

    return _seal(drop)


REASONS = [
    # The seal (artifacts/seal.py, artifacts/signing.py): read first, so nothing unsealed is parsed.
    Reason("seal-missing", _unlink(SEAL_FILE), r"seal\.json: missing; the version is not sealed"),
    Reason("seal-not-json", _write(SEAL_FILE, "{"), r"seal\.json: cannot read JSON"),
    Reason("seal-not-a-seal", _seal(lambda s: s.update(seal_version=2)), r"not a seal_version 1 object"),
    Reason("seal-files-not-a-map", _seal(lambda s: s.update(files=[])), r"files: expected a file name -> sha256 map"),
    Reason("seal-signatures-not-a-list", _seal(lambda s: s.update(signatures={})), r"signatures: expected a list"),
    Reason(
        "seal-signature-malformed",
        _seal(lambda s: s.update(signatures=[{"key_id": "ab"}])),
        r"signatures\[0\]: not a \{key_id, ed25519\} signature",
    ),
    Reason("seal-symlink", _symlink(SEAL_FILE), r"seal\.json is a symlink"),
    Reason("untrusted-unsigned", _unsigned, r"unsigned; the server serves only", signed=True, untrusted="unsigned"),
    Reason(
        "untrusted-unknown-key",
        _signed_by_other_key,
        r"none of them a trusted key",
        signed=True,
        untrusted="unknown_key",
    ),
    Reason("untrusted-bad-signature", _forged, r"does not match the files", signed=True, untrusted="bad_signature"),
    # manifest.json's bytes (artifacts/read.py read_version, artifacts/seal.py read_sealed_file).
    Reason("manifest-not-sealed", _drop_seal_entry("manifest.json"), r"'manifest\.json' is not in seal\.json"),
    Reason("manifest-missing", _unlink("manifest.json"), r"manifest\.json: cannot read"),
    Reason(
        "manifest-changed-after-sealing",
        _append("manifest.json", b" "),
        r"manifest\.json: sha256 \w+ differs from seal\.json's \w+; the file was changed after the version was sealed",
    ),
    Reason("manifest-symlink", _symlink("manifest.json"), r"manifest\.json is a symlink"),
    Reason("manifest-not-json", _write("manifest.json", "{", sealed=True), r"manifest\.json: cannot read JSON"),
    # manifest.json's fields, as the server needs them (artifacts/checks.py manifest_problems, complete=False).
    Reason(
        "manifest-not-an-object", _write("manifest.json", "[]", sealed=True), r"manifest\.json: expected a JSON object"
    ),
    Reason("field-missing", _manifest(lambda m: m.pop("inputs")), r"manifest\.json: missing required field 'inputs'"),
    Reason("field-wrong-type", _manifest(lambda m: m.update(rpc=5)), r"manifest\.json\.rpc: expected a string, got 5"),
    Reason(
        "sha256-not-hex",
        _manifest(lambda m: m["onnx"].update(sha256="xyz")),
        r"onnx\.sha256: 'xyz' is not a sha256 hex digest",
    ),
    Reason(
        "inputs-not-one",
        _manifest(lambda m: m["inputs"].append(m["inputs"][0])),
        r"inputs: expected exactly one input, got 2",
    ),
    Reason("input-not-an-object", _manifest(lambda m: m.update(inputs=[5])), r"inputs\[0\]: expected an object"),
    Reason("input-dtype", _input(lambda i: i.update(dtype="float64")), r"dtype: the server feeds float32 only"),
    Reason(
        "input-shape",
        _input(lambda i: i.update(shape=[None, 0])),
        r"shape: expected a list of positive integers or null",
    ),
    Reason(
        "features-vs-last-axis",
        _input(lambda i: i["features"].pop()),
        r"features: 5 features for a last axis of 6",
    ),
    Reason("feature-not-an-object", _input(lambda i: i["features"].insert(0, 5)), r"features\[0\]: expected an object"),
    Reason("feature-min-above-max", _feature(0, min=50, max=10), r"features\[0\]: min 50 is above max 10"),
    Reason(
        "feature-categories",
        _feature(0, categories={"up": "yes"}),
        r"features\[0\]\.categories: expected a name -> integer map",
    ),
    Reason(
        "feature-not-a-request-field",
        _feature(0, name="uptime_ratio"),
        r"'uptime_ratio' is not a request field with a stated range",
    ),
    Reason(
        "feature-range-wider-than-the-proto",
        _feature(0, max=1e30),
        r"features\[0\]\.max: 1e\+30 is outside the proto's range 0-100 for uptime_pct",
    ),
    Reason(
        "example-not-numeric",
        _manifest(lambda m: m["example"].update(input=[["high"]])),
        r"example: not a rectangular numeric array",
    ),
    # The model file (artifacts/paths.py inside, artifacts/read.py read_version).
    Reason(
        "model-path-outside",
        _manifest(lambda m: m["onnx"].update(file=f"../{DEFAULT_VERSION}/model.onnx")),
        r"onnx\.file: '\.\./\w+/model\.onnx' is not a file name inside the version directory",
    ),
    Reason("model-symlink", _symlink("model.onnx"), r"model\.onnx is a symlink"),
    Reason("model-not-sealed", _drop_seal_entry("model.onnx"), r"'model\.onnx' is not in seal\.json"),
    Reason("model-missing", _unlink("model.onnx"), r"model\.onnx: cannot read"),
    Reason(
        "model-changed-after-sealing",
        _append("model.onnx", b"\0"),
        r"model\.onnx: sha256 \w+ differs from seal\.json's \w+; the file was changed after the version was sealed",
    ),
    Reason(
        "model-sha256-not-the-manifests",
        _manifest(lambda m: m["onnx"].update(sha256="0" * 64)),
        r"model\.onnx: sha256 \w+ differs from the manifest's",
    ),
    # The version as the server serves it (server/runtime.py load_version).
    Reason(
        "directory-not-the-manifests",
        _manifest(lambda m: m.update(version="20260301T000000Z")),
        r"manifest names reliability_detector/20260301T000000Z, not its directory",
    ),
    Reason("unknown-rpc", _manifest(lambda m: m.update(rpc="PredictWeather")), r"unknown rpc 'PredictWeather'"),
    # Whether the manifest fits its RPC's messages (server/rpc_spec.py check_manifest).
    Reason(
        "input-rank",
        _input(lambda i: i.update(shape=[None, 2, 6])),
        r"DetectAnomaly needs an input of rank 2 with fixed inner axes, got \(None, 2, 6\)",
    ),
    Reason(
        "features-not-request-fields",
        _feature(0, name="throughput_mbps"),
        r"features \['throughput_mbps'\] do not match NodeMetrics",
    ),
    Reason(
        "missing-output",
        _manifest(lambda m: m["outputs"][0].update(name="score")),
        r"DetectAnomaly needs the output 'anomaly_score'",
    ),
    Reason(
        "missing-threshold",
        _manifest(lambda m: m["thresholds"].pop("anomaly_score")),
        r"DetectAnomaly needs the threshold 'anomaly_score'",
    ),
    Reason(
        "missing-constant",
        _manifest(lambda m: m["constants"].pop("interval_level")),
        r"PredictBandwidth needs the constant 'interval_level'",
        model="bandwidth_predictor",
    ),
    # The graph itself (server/runtime.py load_version: onnxruntime, then the test inference).
    Reason("onnx-unloadable", _garbage_onnx, r"model\.onnx: onnxruntime cannot load it"),
    Reason(
        "graph-input-not-the-manifests",
        _input(lambda i: i.update(name="metrics")),
        r"graph inputs \['node_metrics'\] / missing outputs \[\] differ from the manifest",
    ),
    Reason(
        "graph-output-missing",
        _manifest(lambda m: m["outputs"].append({"name": "extra", "dtype": "float32"})),
        r"graph inputs \['node_metrics'\] / missing outputs \['extra'\] differ from the manifest",
    ),
    Reason(
        "example-output-unknown",
        _manifest(lambda m: m["example"]["outputs"].update(extra=[0.5])),
        r"example output 'extra' is not a model output",
    ),
    Reason(
        "example-output-differs",
        _manifest(lambda m: m["example"]["outputs"].update(anomaly_score=[[0.999]])),
        r"test inference output 'anomaly_score' is \[[\d.e-]+\], the manifest's example says \[\[0\.999\]\]",
    ),
    Reason(
        "test-inference-fails",
        _manifest(lambda m: m["example"].update(input=[[1.0, 2.0, 3.0]])),
        r"model\.onnx: test inference failed",
    ),
    # Which RPC the model serves (server/store.py).
    Reason(
        "rpc-changed",
        _rpc_of_another_model,
        r"rpc SelectCompression differs from DetectAnomaly, which version 20260101T000000Z of reliability_detector "
        r"serves; a model keeps its RPC across versions",
    ),
]


@pytest.mark.parametrize("reason", REASONS, ids=[r.id for r in REASONS])
def test_a_version_broken_so_is_refused_naming_why_and_the_served_one_stays(
    tmp_path: Path, reason: Reason, caplog: pytest.LogCaptureFixture
) -> None:
    model_dir, key, registry = tmp_path / "models", Ed25519PrivateKey.generate(), CollectorRegistry()
    served = write_version(model_dir, reason.model)
    if reason.signed:
        reseal(served, key)
    trusted = {key_id(key.public_key()): key.public_key()} if reason.signed else None
    store = ModelStore(model_dir, Metrics(registry, 0.01), trusted_keys=trusted)
    assert store.reload() == 1  # serving the older version
    broken = write_version(model_dir, reason.model, NEW, seed=1)
    reason.breaks(broken, key)
    with caplog.at_level(logging.ERROR, logger="server.store"):
        assert store.reload() == 0  # the newer version is refused
        assert store.reload() == 0  # and, unchanged, not tried (nor counted) again
    assert [(m.name, m.version) for m in store.models()] == [(reason.model, DEFAULT_VERSION)]
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rejected model version")]
    assert len(refusals) == 1, refusals
    assert refusals[0].startswith(f"rejected model version {broken}: "), refusals[0]
    assert re.search(reason.says, refusals[0]), refusals[0]
    failures = {"model": reason.model, "result": "failure"}
    assert registry.get_sample_value("dwcp_inference_model_reloads_total", failures) == 1
    if reason.untrusted is not None:
        labels = {"model": reason.model, "reason": reason.untrusted}
        assert registry.get_sample_value("dwcp_inference_model_untrusted_total", labels) == 1


def test_a_model_claiming_an_rpc_another_model_serves_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_dir = tmp_path / "models"
    write_version(model_dir, "reliability_detector")
    impostor = write_version(tmp_path / "elsewhere", "reliability_detector", NEW)
    moved = Path(shutil.move(impostor, model_dir / "spare_detector" / NEW))
    _manifest(lambda m: m.update(name="spare_detector"))(moved, Ed25519PrivateKey.generate())
    store = ModelStore(model_dir, Metrics(CollectorRegistry(), 0.01))
    with caplog.at_level(logging.ERROR, logger="server.store"):
        store.reload()
    assert [(m.name, m.manifest.rpc) for m in store.models()] == [("reliability_detector", "DetectAnomaly")]
    assert any("rpc DetectAnomaly is already served by reliability_detector" in r.getMessage() for r in caplog.records)


def test_the_doc_lists_every_reason() -> None:
    section = DOC.read_text().split("## Why a version is refused", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"`\[([a-z0-9-]+)\]`", section)
    assert listed == [r.id for r in REASONS] + ["rpc-served-by-another-model"]

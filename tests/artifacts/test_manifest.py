"""The manifest contract: typed reading is lossless, the validator names fields, the version rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from artifacts.checks import manifest_problems
from artifacts.read import parse_manifest, read_manifest
from artifacts.schema import ArtifactError
from artifacts.versions import newest_version, staging_dir, visible_dirs
from bench.tiny_models import write_version

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = sorted((ROOT / "models").glob("*/*/manifest.json"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The manifest.json document of a tiny reliability_detector written through artifacts.write."""
    version = write_version(tmp_path_factory.mktemp("tiny"), "reliability_detector")
    return dict(json.loads((version / "manifest.json").read_text()))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.parent.name)
def test_a_committed_manifest_is_complete_and_reads_back_whole(path: Path) -> None:
    raw = json.loads(path.read_text())
    assert manifest_problems(raw, str(path)) == []
    assert parse_manifest(raw, str(path)).to_json() == raw


def test_the_tiny_models_are_written_complete(tiny: dict[str, Any]) -> None:
    assert manifest_problems(tiny) == []
    assert tiny["onnx"]["size_bytes"] > 0 and tiny["library_versions"]["onnxruntime"]


def test_a_reader_needs_only_what_serving_uses(tiny: dict[str, Any]) -> None:
    served = {k: tiny[k] for k in ("name", "version", "rpc", "onnx", "inputs", "outputs", "example")}
    manifest = parse_manifest(served, "m.json")  # a hand-written manifest without provenance still serves
    assert manifest.thresholds == {} and manifest.parity is None and manifest.training_data_fingerprint == ""
    problems = manifest_problems(served, "m.json")  # but a writer must record it
    assert "m.json: missing required field 'parity'" in problems
    assert "m.json: missing required field 'training_data'" in problems


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("inputs"), "m.json: missing required field 'inputs'"),
        (lambda m: m["inputs"].append(m["inputs"][0]), "m.json.inputs: expected exactly one input, got 2"),
        (lambda m: m["inputs"][0].update(dtype="float64"), "m.json.inputs[0].dtype: the server feeds float32 only"),
        (lambda m: m["inputs"][0].update(shape=[None, 0]), "m.json.inputs[0].shape: expected a list of positive"),
        (lambda m: m["inputs"][0]["features"].pop(), "m.json.inputs[0].features: 5 features for a last axis of 6"),
        (lambda m: m["inputs"][0]["features"][2].update(min=True), "m.json.inputs[0].features[2].min: expected a num"),
        (lambda m: m["inputs"][0]["features"][2].update(min=5, max=1), "m.json.inputs[0].features[2]: min 5 is above"),
        (lambda m: m["inputs"][0]["features"][0].update(categories={"a": "x"}), "features[0].categories: expected a"),
        (lambda m: m["outputs"][1].pop("dtype"), "m.json.outputs[1]: missing required field 'dtype'"),
        (lambda m: m["onnx"].update(sha256="xyz"), "m.json.onnx.sha256: 'xyz' is not a sha256 hex digest"),
        (lambda m: m["example"].update(input=[[1, [2]]]), "m.json.example: not a rectangular numeric array"),
    ],
)
def test_a_reader_refuses_what_the_server_cannot_serve_naming_the_field(
    tiny: dict[str, Any], change: Any, message: str
) -> None:
    broken = copy.deepcopy(tiny)
    change(broken)
    with pytest.raises(ArtifactError) as caught:
        parse_manifest(broken, "m.json")
    assert message in str(caught.value)


def test_read_manifest_names_the_file_of_unreadable_json(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{half written")
    with pytest.raises(ArtifactError, match=f"{tmp_path / 'manifest.json'}: cannot read JSON"):
        read_manifest(tmp_path)
    with pytest.raises(ArtifactError, match="expected a JSON object"):
        parse_manifest([1, 2], "m.json")


def test_newest_version_skips_writers_hidden_directories_and_files(tmp_path: Path) -> None:
    assert newest_version(tmp_path / "absent") is None
    for name in ["20260101T000000Z", "20260301T000000Z", ".20260501T000000Z.tmp"]:
        (tmp_path / name).mkdir()
    staging_dir(tmp_path, "20260401T000000Z").mkdir()
    (tmp_path / "20260601T000000Z").write_text("a file, not a version")
    assert [p.name for p in visible_dirs(tmp_path)] == ["20260101T000000Z", "20260301T000000Z"]
    assert newest_version(tmp_path) == tmp_path / "20260301T000000Z"

"""Tests for publishing a trained model as a version directory: provenance, parity, atomic write, fingerprint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from artifacts import write as artifact_write
from artifacts.checks import manifest_problems
from artifacts.limits import FEATURE_LIMITS
from artifacts.read import read_manifest, read_model_bytes
from artifacts.schema import ArtifactError, Feature, InputSpec, ModelCard, OutputSpec
from artifacts.session import ort_session
from training.export_forest import check_forest_parity, forest_to_onnx
from training.fingerprint import data_fingerprint, training_data_summary
from training.publish import write_model_version

CREATED = datetime(2026, 11, 26, 13, 0, 0, tzinfo=UTC)
FEATURES = ["uptime_pct", "failure_ratio", "packet_loss_ratio", "retransmits_count", "error_budget_burn_rate", "rtt_ms"]


@pytest.fixture(scope="module")
def forest_artifact() -> tuple[object, ModelCard, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=(300, 6)).astype(np.float32)
    forest = IsolationForest(n_estimators=10, random_state=42).fit(x)
    model = forest_to_onnx(forest, threshold=0.6)
    frame = pd.DataFrame(x, columns=FEATURES).assign(
        timestamp=pd.date_range("2026-01-05", periods=len(x), freq="min", tz="UTC")
    )
    card = ModelCard(
        name="reliability_detector",
        rpc="DetectAnomaly",
        description="IsolationForest(10 trees) test model",
        input=InputSpec(
            "node_metrics",
            (None, 6),
            tuple(Feature(n, "unit", *FEATURE_LIMITS[n], f"test feature {n}", column=n) for n in FEATURES),
        ),
        outputs=(
            OutputSpec("anomaly_score", "float32", "score 0-1", "2^(-mean path length / c)"),
            OutputSpec("is_anomaly", "bool", "flag", "anomaly_score >= threshold"),
        ),
        training_data=training_data_summary(frame),
        parity=check_forest_parity(model, forest, x, 0.6).report,
        thresholds={"anomaly_score": 0.6},
        metrics={"test_recall": 0.5},
    )
    return model, card, x[:1]


def test_writes_a_complete_valid_version(tmp_path: Path, forest_artifact: tuple) -> None:
    model, card, example = forest_artifact
    path = write_model_version(tmp_path / "reliability_detector", model, card, example, created=CREATED)
    assert path.name == "20261126T130000Z"
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.onnx", "seal.json"]
    assert [p.name for p in path.parent.iterdir()] == ["20261126T130000Z"]  # no temporary left behind
    loaded = read_manifest(path, complete=True)
    assert loaded.version == "20261126T130000Z" and loaded.rpc == "DetectAnomaly"
    assert loaded.feature_names == FEATURES and loaded.output_names == ["anomaly_score", "is_anomaly"]
    raw = json.loads((path / "manifest.json").read_text())
    assert loaded.to_json() == raw  # the typed manifest holds the whole document
    assert raw["created_utc"] == "2026-11-26T13:00:00Z"
    assert raw["onnx"]["opset"] == 17 and raw["onnx"]["size_bytes"] == (path / "model.onnx").stat().st_size
    assert raw["library_versions"]["onnxruntime"] and raw["library_versions"]["scikit-learn"]
    assert raw["parity"]["decisions_identical"] is True
    assert raw["training_data"]["rows"] == 300 and raw["training_data"]["start_utc"] == "2026-01-05T00:00:00Z"
    session = ort_session((path / "model.onnx").read_bytes())
    score, flag = session.run(None, {"node_metrics": np.array(raw["example"]["input"], dtype=np.float32)})
    assert raw["example"]["outputs"] == {"anomaly_score": score.tolist(), "is_anomaly": flag.tolist()}


def test_existing_version_is_never_overwritten(tmp_path: Path, forest_artifact: tuple) -> None:
    model, card, example = forest_artifact
    write_model_version(tmp_path, model, card, example, created=CREATED)
    with pytest.raises(FileExistsError):
        write_model_version(tmp_path, model, card, example, created=CREATED)


def test_interrupted_write_leaves_only_a_hidden_temporary(
    tmp_path: Path, forest_artifact: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, card, example = forest_artifact

    def crash(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(artifact_write.os, "rename", crash)
    with pytest.raises(OSError):
        write_model_version(tmp_path, model, card, example, created=CREATED)
    assert [p.name for p in tmp_path.iterdir()] == [".tmp-20261126T130000Z"]
    monkeypatch.undo()
    path = write_model_version(tmp_path, model, card, example, created=CREATED)  # leftover cleaned up
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_bad_example_shape_writes_nothing(tmp_path: Path, forest_artifact: tuple) -> None:
    model, card, example = forest_artifact
    with pytest.raises(ValueError, match="example input shape"):
        write_model_version(tmp_path, model, card, np.zeros((2, 6), np.float32), created=CREATED)
    assert list(tmp_path.iterdir()) == []


def test_reading_rejects_a_tampered_model_and_missing_fields(tmp_path: Path, forest_artifact: tuple) -> None:
    model, card, example = forest_artifact
    path = write_model_version(tmp_path, model, card, example, created=CREATED)
    (path / "model.onnx").write_bytes((path / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match="sha256"):
        read_model_bytes(path, read_manifest(path))
    raw = json.loads((path / "manifest.json").read_text())
    del raw["thresholds"]
    raw["version"] = "2026-11-26"
    raw["inputs"][0]["features"][0]["min"] = 2e6
    problems = manifest_problems(raw)
    assert any("thresholds" in p for p in problems)
    raw["thresholds"] = {}
    problems = manifest_problems(raw)
    assert any("version" in p for p in problems)
    assert any("features[0]: min" in p for p in problems)


def test_fingerprint_is_canonical_and_sensitive() -> None:
    frame = pd.DataFrame({"rtt_ms": [1.0, 2.0], "link_id": ["a", "b"]})
    assert data_fingerprint(frame) == data_fingerprint(frame.copy())
    assert data_fingerprint(frame) != data_fingerprint(frame.assign(rtt_ms=[1.0, 2.5]))
    assert data_fingerprint(frame) != data_fingerprint(frame[["link_id", "rtt_ms"]])
    assert data_fingerprint(frame) != data_fingerprint(frame.iloc[::-1])
    array = np.arange(6, dtype=np.float32)
    assert data_fingerprint(array) != data_fingerprint(array.reshape(2, 3))

"""End to end: tiny versions of all four models trained, exported, published and re-evaluated."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from artifacts.read import read_manifest, read_model_bytes
from training.cli import main as training_main
from training.metrics import Evaluation

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXPECTED_IO = {
    "bandwidth_predictor": (
        "link_samples",
        [None, 10, 7],  # every bandwidth feature: the synthetic data has all their columns
        ["predicted_throughput_mbps", "lower_bound_mbps", "upper_bound_mbps", "confidence"],
    ),
    "compression_selector": ("compression_features", [None, 6], ["level_probabilities", "level"]),
    "reliability_detector": ("node_metrics", [None, 6], ["anomaly_score", "is_anomaly"]),
    "consensus_latency": (
        "consensus_latencies_ms",
        [None, 20],
        ["reconstruction_error", "is_high_latency", "level_ms", "peak_ms", "newest_z", "held_z"],
    ),
}


def _write(tmp: Path, name: str, shift_test_throughput: float = 1.0, constant: str | None = None) -> tuple[Path, Path]:
    """Small telemetry and incidents; `constant`: a column set to one value everywhere (an operator's filler)."""
    from training.datagen import generate

    data = generate(nodes=5, hours=30, interval_s=120, seed=3, incidents_per_node_day=4.0, test_fraction=0.0)
    metrics = data.metrics
    if constant is not None:
        metrics[constant] = metrics[constant].median()
    if shift_test_throughput != 1.0:  # the last 15 % of each link: the rows the test split takes
        order = metrics.groupby(["node_id", "peer_id"])["epoch_time"].rank(pct=True)
        metrics.loc[order > 0.85, "throughput_mbps"] *= shift_test_throughput
    metrics_path, incidents_path = tmp / f"{name}.parquet", tmp / f"{name}_incidents.json"
    metrics.to_parquet(metrics_path)
    incidents_path.write_text(json.dumps(data.incidents))
    return metrics_path, incidents_path


def _train(metrics: Path, incidents: Path | None, models: Path, reports: Path, *flags: str) -> int:
    """`python -m training train` on these paths, quietly, plus `flags`; its exit code."""
    args = ["train", "--data-path", str(metrics), "--output-dir", str(models), "--report-dir", str(reports), "--quiet"]
    if incidents is not None:
        args += ["--incidents-path", str(incidents)]
    return training_main([*args, *flags])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path, int]:
    tmp = tmp_path_factory.mktemp("pipeline")
    metrics, incidents = _write(tmp, "telemetry")
    models, reports = tmp / "models", tmp / "reports"
    code = _train(metrics, incidents, models, reports, "--epochs", "1", "--max-train-windows", "3000")
    return models, reports, metrics, incidents, code


def test_all_four_models_are_published_with_complete_manifests(trained: tuple) -> None:
    models, reports, _, _, code = trained
    # One epoch on 30 hours: a tiny detector may catch no test incident, a FAILED model (exit 4), still published.
    failed = json.loads((reports / "master_training_report.json").read_text())["failed"]
    assert code == (4 if failed else 0) and set(failed) <= {"consensus_latency", "reliability_detector"}
    for name, (input_name, shape, outputs) in EXPECTED_IO.items():
        versions = [p for p in (models / name).iterdir() if not p.name.startswith(".")]
        assert len(versions) == 1, name
        manifest = read_manifest(versions[0], complete=True)  # checks every field a writer must write
        read_model_bytes(versions[0], manifest)  # and the sha256
        assert manifest.input.name == input_name
        assert list(manifest.input.shape) == shape
        assert manifest.output_names == outputs
        # Decisions match the native model's on every parity row, or differ only on near-threshold float ties.
        parity = manifest.parity
        assert parity is not None and parity.rows > 0, name
        assert parity.decisions_identical or parity.near_threshold_rows > 0, f"{name}: {parity}"
        # Scores agree within 1e-4; Mbps outputs (up to 1e5) within 1e-4 + 1e-5 relative, checked at export.
        assert parity.max_abs_diff <= (1.0 if name == "bandwidth_predictor" else 1e-4)
        assert manifest.targets, f"{name}: targets travel with the model"
        assert manifest.baselines, f"{name}: baselines travel with the model"
        assert (versions[0] / "model.onnx").stat().st_size < 10 * 1024 * 1024
        session = ort.InferenceSession(str(versions[0] / "model.onnx"), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].name == input_name
        assert sorted(o.name for o in session.get_outputs()) == sorted(outputs)  # looked up by name
        got = session.run(outputs, {input_name: manifest.example_input})
        for out_name, value in zip(outputs, got, strict=True):
            np.testing.assert_allclose(
                np.asarray(value, dtype=np.float64).ravel(),
                manifest.example_outputs[out_name].astype(np.float64).ravel(),
                atol=1e-4,
            )


def test_thresholds_travel_inside_the_graph(trained: tuple) -> None:
    models = trained[0]
    version = next(p for p in (models / "reliability_detector").iterdir() if not p.name.startswith("."))
    manifest = read_manifest(version)
    session = ort.InferenceSession(str(version / manifest.onnx_file), providers=["CPUExecutionProvider"])
    rows = np.asarray([[99.99, 0.0, 0.0, 0.0, 0.1, 5.0], [20.0, 0.6, 0.3, 5000.0, 80.0, 900.0]], np.float32)
    score, flag = session.run(None, {"node_metrics": rows})
    assert ((score >= manifest.thresholds["anomaly_score"]) == flag).all()
    assert score.min() > 0.0 and score.max() <= 1.0


def test_reports_show_targets_and_baselines(trained: tuple) -> None:
    reports = trained[1]
    master = json.loads((reports / "master_training_report.json").read_text())
    assert {m["evaluation"]["model"] for m in master["models"]} == set(EXPECTED_IO)
    text = (reports / "master_training_report.md").read_text()
    assert "persistence" in text and "moving_average_10" in text and "zscore_rule" in text
    assert "fixed_level_3" in text and "rolling_zscore" in text
    for entry in master["models"]:
        for plot in entry["plots"].values():
            assert (reports / "plots" / plot).stat().st_size > 1000


def test_evaluate_runs_the_onnx_files_on_other_data(trained: tuple, tmp_path: Path) -> None:
    models = trained[0]
    metrics, incidents = _write(tmp_path, "other")
    code = training_main(
        [
            "evaluate",
            "--checkpoints-dir",
            str(models),
            "--test-data-path",
            str(metrics),
            "--test-incidents-path",
            str(incidents),
            "--output-dir",
            str(tmp_path / "eval"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "eval" / "evaluation_report.json").read_text())
    assert len(report["models"]) == 4
    bandwidth = next(m for m in report["models"] if m["evaluation"]["model"] == "bandwidth_predictor")
    assert bandwidth["evaluation"]["metrics"]["mae"] > 0


def test_strict_rejects_a_model_that_does_not_beat_a_baseline(
    trained: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A baseline that scores the test labels themselves cannot be beaten: the strict run must not publish."""
    from training.tasks import reliability

    _, _, metrics, incidents, _ = trained
    real_evaluate = reliability._evaluate

    def with_oracle(
        labels: np.ndarray, score: np.ndarray, flag: np.ndarray, baselines: dict, target: float
    ) -> Evaluation:
        return real_evaluate(labels, score, flag, baselines | {"labels_oracle": (labels.astype(float), 0.5)}, target)

    monkeypatch.setattr(reliability, "_evaluate", with_oracle)
    flags = ["--models", "reliability_detector", "--strict"]
    code = _train(metrics, incidents, tmp_path / "served", tmp_path / "rep", *flags)
    assert code == 3
    assert not (tmp_path / "served" / "reliability_detector").exists()
    assert any((tmp_path / "rep" / "rejected" / "reliability_detector").iterdir())


def test_strict_publishes_a_model_that_misses_a_target_but_beats_its_baselines(trained: tuple, tmp_path: Path) -> None:
    """Targets are reported, marked missed, but only the baselines gate publishing."""
    _, _, metrics, incidents, _ = trained
    flags = ["--models", "compression_selector", "--target-accuracy", "1.01", "--strict", "--epochs", "1"]
    code = _train(metrics, incidents, tmp_path / "served", tmp_path / "rep", *flags)
    report = json.loads((tmp_path / "rep" / "master_training_report.json").read_text())
    evaluation = report["models"][0]["evaluation"]
    assert not evaluation["targets"]["accuracy_vs_oracle"]["met"]
    assert (code == 0) == all(evaluation["beats_baselines"].values())
    assert (tmp_path / "served" / "compression_selector").exists() == (code == 0)


def test_scaler_is_fit_on_the_training_split_only(tmp_path: Path) -> None:
    """Divide throughput in every link's test period by 1000: the exported scaling must not move."""
    from training.splits import TRAIN, temporal_split
    from training.tasks.compression import LOG1P_FEATURES, _dataset
    from training.validate import load_validated_telemetry

    metrics, incidents = _write(tmp_path, "shifted", shift_test_throughput=0.001)
    flags = ["--models", "compression_selector", "--epochs", "1", "--max-train-windows", "100000"]
    code = _train(metrics, incidents, tmp_path / "m", tmp_path / "r", *flags)
    assert code == 0
    version = next(p for p in (tmp_path / "m" / "compression_selector").iterdir() if not p.name.startswith("."))
    exported_mean = read_manifest(version).audit_constants["preprocessing"]["mean"]
    data = load_validated_telemetry(metrics, incidents)
    features = data.features("compression_selector")
    x, usable = _dataset(data, features)
    train = usable & (temporal_split(data.metrics, ("node_id", "peer_id")) == TRAIN)
    throughput = [f.name for f in features].index("throughput_mbps")  # scaled after log1p
    assert "throughput_mbps" in LOG1P_FEATURES
    train_mean = np.log1p(x[train, throughput].astype(np.float64)).mean()
    all_mean = np.log1p(x[usable, throughput].astype(np.float64)).mean()
    assert exported_mean[throughput] == pytest.approx(train_mean, rel=1e-4)
    assert abs(all_mean - train_mean) > 0.5  # the shift is visible, so the check above can fail


def test_prune_keeps_the_newest_versions(tmp_path: Path) -> None:
    from training.publish import prune_versions

    for name in ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z", ".tmp-20260104T000000Z"]:
        (tmp_path / name).mkdir()
    deleted = prune_versions(tmp_path, keep=2)
    assert [p.name for p in deleted] == ["20260101T000000Z"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".tmp-20260104T000000Z",
        "20260102T000000Z",
        "20260103T000000Z",
    ]


def test_reliability_without_incidents_fails_with_a_clear_message(
    trained: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, metrics, _, _ = trained
    code = _train(metrics, None, tmp_path / "m", tmp_path / "r", "--models", "reliability_detector")
    assert code == 2  # refused at validation, before any training
    err = capsys.readouterr().err
    assert "reliability_detector needs incidents" in err and "--incidents-path" in err
    assert not (tmp_path / "m" / "reliability_detector").exists()


def _version(models: Path, name: str) -> Path:
    return next(p for p in (models / name).iterdir() if not p.name.startswith("."))


def test_a_constant_feature_trains_and_publishes_with_a_neutral_scale(tmp_path: Path) -> None:
    """A trace without RTT, filled with one value: the selector trains, passes parity and is published."""
    metrics, incidents = _write(tmp_path, "constant_rtt", constant="rtt_ms")
    flags = ["--models", "compression_selector", "--epochs", "1", "--max-train-windows", "3000"]
    code = _train(metrics, incidents, tmp_path / "m", tmp_path / "r", *flags)
    assert code == 0
    manifest = read_manifest(_version(tmp_path / "m", "compression_selector"))
    preprocessing = manifest.audit_constants["preprocessing"]
    rtt = manifest.feature_names.index("rtt_ms")
    assert preprocessing["constant_features"] == [rtt]
    assert preprocessing["std"][rtt] == 1.0  # not floored at 1e-6
    report = json.loads((tmp_path / "r" / "compression_selector_report.json").read_text())
    assert report["parity"]["failure"] == "" and report["failures"] == []
    assert any("rtt_ms is constant on the training split" in n for n in report["evaluation"]["notes"])


def test_an_impossible_parity_tolerance_fails_naming_the_output_and_keeps_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tolerance 0: every float32 difference fails; the model and its report are still written, under rejected/."""
    metrics, incidents = _write(tmp_path, "constant_rtt", constant="rtt_ms")
    flags = ["--models", "compression_selector", "--epochs", "1", "--max-train-windows", "3000"]
    code = _train(metrics, incidents, tmp_path / "m", tmp_path / "r", *flags, "--parity-tolerance", "0")
    assert code == 4
    assert not (tmp_path / "m" / "compression_selector").exists()
    rejected = _version(tmp_path / "r" / "rejected", "compression_selector")
    read_manifest(rejected, complete=True)
    out = capsys.readouterr().out
    failed = next(line for line in out.splitlines() if line.startswith("FAILED compression_selector: parity: "))
    assert "output 'level_probabilities' differs from the native model by" in failed and "on row" in failed
    assert "tolerance 0 x scale" in failed and "likely cause:" in failed
    assert "rtt_ms is constant on the training split" in failed
    assert f"written to {rejected}" in out  # the message gives the location
    report = json.loads((tmp_path / "r" / "master_training_report.json").read_text())
    assert report["failed"] == ["compression_selector"] and report["parity_tolerance"] == 0.0
    assert "| compression_selector | **FAILED** |" in (tmp_path / "r" / "master_training_report.md").read_text()


def test_parity_tolerance_must_be_a_number_at_least_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _train(Path("m.parquet"), None, Path("m"), Path("r"), "--parity-tolerance", "-1")
    assert exit_info.value.code == 2
    assert "--parity-tolerance must be a finite number >= 0, not '-1'" in capsys.readouterr().err


def _write_incidents_invisible_in_test(tmp: Path) -> tuple[Path, Path]:
    """Incidents show in the metrics until the test period, where every row of the detector's features is
    set to the column's median: the test incidents are labelled but do not affect the metrics."""
    from training.datagen import generate
    from training.features import MODEL_DATA

    data = generate(nodes=5, hours=30, interval_s=120, seed=3, incidents_per_node_day=4.0, test_fraction=0.0)
    metrics = data.metrics
    test_rows = metrics.groupby(["node_id", "peer_id"])["epoch_time"].rank(pct=True) > 0.85  # the test split
    for feature in MODEL_DATA["reliability_detector"].features:
        metrics.loc[test_rows, feature.column] = metrics[feature.column].median()
    metrics_path, incidents_path = tmp / "invisible.parquet", tmp / "invisible_incidents.json"
    metrics.to_parquet(metrics_path)
    incidents_path.write_text(json.dumps(data.incidents))
    return metrics_path, incidents_path


def test_a_detector_that_catches_nothing_is_a_failed_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its flag catches no test incident: FAILED in the summary, refused by --strict, exit 4 with or without it."""
    metrics, incidents = _write_incidents_invisible_in_test(tmp_path)
    flags = ["--models", "reliability_detector"]
    code = _train(metrics, incidents, tmp_path / "served", tmp_path / "rep", *flags, "--strict")
    out = capsys.readouterr().out
    assert code == 4
    assert not (tmp_path / "served" / "reliability_detector").exists()
    assert any((tmp_path / "rep" / "rejected" / "reliability_detector").iterdir())
    summary = next(line for line in out.splitlines() if line.startswith("| reliability_detector | **FAILED** |"))
    assert "the flag catches none of the" in summary and "positive test rows (0 true positives" in summary
    code = _train(metrics, incidents, tmp_path / "served", tmp_path / "rep2", *flags)
    assert code == 4  # published, but the exit says it failed
    assert any((tmp_path / "served" / "reliability_detector").iterdir())
    assert "reliability_detector: published, but FAILED" in capsys.readouterr().out

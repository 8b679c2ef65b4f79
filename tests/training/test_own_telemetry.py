"""Bring your own telemetry: a file with only the columns one model needs, on any fixed interval, trains it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from artifacts.read import read_manifest
from training.cli import main
from training.tasks.bandwidth import link_windows
from training.validate import DataRequest, load_validated_telemetry, validate_files

START_S = 1_767_571_200  # 2026-01-05T00:00:00Z


def throughput_trace(interval_s: int = 1, samples: int = 400, links: int = 2, seed: int = 0) -> pd.DataFrame:
    """What a throughput trace carries: time, the two ends of the link, throughput. Nothing else."""
    rng = np.random.default_rng(seed)
    frames = []
    for link in range(links):
        level = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.03, samples)))
        frames.append(
            pd.DataFrame(
                {
                    "epoch_time": START_S + np.arange(samples) * interval_s,
                    "node_id": f"n{link}",
                    "peer_id": "server",
                    "throughput_mbps": np.round(level * rng.uniform(0.9, 1.1, samples), 3),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_throughput_only_file_validates_for_the_bandwidth_predictor_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(throughput_trace(), tmp_path / "trace.csv")
    assert main(["validate", str(path), "--models", "bandwidth_predictor"]) == 0
    out = capsys.readouterr().out
    assert "MODEL bandwidth_predictor: can train; features: throughput_mbps; optional features absent: rtt_ms" in out
    report = validate_files(path)  # all four: says which it can train, fails none that it cannot
    assert report.ok, report.format()
    can = {m.model: m.can_train for m in report.models}
    assert can == {
        "bandwidth_predictor": True,
        "compression_selector": False,
        "reliability_detector": False,
        "consensus_latency": False,
    }
    compression = next(m for m in report.models if m.model == "compression_selector")
    assert "column hde_compression_ratio missing" in compression.reasons
    assert main(["validate", str(path), "--models", "consensus_latency"]) == 1
    assert "column 'consensus_latency_ms': column needed by consensus_latency is missing" in capsys.readouterr().out


def test_throughput_only_file_trains_the_bandwidth_predictor_on_that_feature(tmp_path: Path) -> None:
    trace = throughput_trace(samples=300)
    trace = trace.drop(index=[100, 101, 102]).reset_index(drop=True)  # a 3-sample gap in link n0
    path = trace.to_parquet(tmp_path / "trace.parquet") or tmp_path / "trace.parquet"
    models, reports = tmp_path / "models", tmp_path / "reports"
    args = ["train", "--data-path", str(path), "--output-dir", str(models), "--report-dir", str(reports)]
    args += ["--models", "bandwidth_predictor", "--epochs", "1", "--max-train-windows", "200", "--quiet"]
    assert main(args) == 0
    version = next(p for p in (models / "bandwidth_predictor").iterdir() if not p.name.startswith("."))
    manifest = read_manifest(version).to_json()
    assert [f["name"] for f in manifest["inputs"][0]["features"]] == ["throughput_mbps"]
    assert manifest["inputs"][0]["shape"] == [None, 10, 1]
    assert manifest["training_data"]["sample_interval_s"] == 1.0
    master = json.loads((reports / "master_training_report.json").read_text())
    assert master["features"] == {"bandwidth_predictor": ["throughput_mbps"]}
    assert master["sampling"]["sample_interval_s"] == 1.0
    counts = master["models"][0]["split_counts"]
    # Link n0 (297 samples, split 100 | 197) gives 90 + 187 windows of 11 instead of 287: 10 lost to the gap.
    assert counts["segments"] == 3 and counts["windows_dropped_at_gaps"] == 10
    assert counts["segments_too_short"] == 0


def test_jittery_stamps_are_snapped_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = throughput_trace(samples=60, links=1)
    stamps = trace["epoch_time"].to_numpy().copy()
    stamps[[10, 30]] -= 1  # second 10 written as 9 (then 10 skipped), second 30 as 29
    trace["epoch_time"] = stamps
    trace.loc[45.5] = trace.loc[45]  # a true duplicate row of second 45
    trace = trace.sort_index().reset_index(drop=True)
    path = _csv(trace, tmp_path / "jitter.csv")
    assert main(["validate", str(path), "--models", "bandwidth_predictor"]) == 0
    out = capsys.readouterr().out
    assert "interval 1 s; 2 row(s) snapped to the grid" in out and "1 duplicate row(s) dropped (first kept)" in out
    data = load_validated_telemetry(path, request=DataRequest(models=("bandwidth_predictor",)))
    assert data.metrics["epoch_time"].tolist() == (START_S + np.arange(60)).tolist()
    assert (data.metrics["timestamp"].astype("int64") // 10**9).tolist() == data.metrics["epoch_time"].tolist()
    windows, _, _ = link_windows(data, data.features("bandwidth_predictor"))
    assert len(windows.inputs) == 60 - 10 and windows.gaps["windows_dropped_at_gaps"] == 0


def test_fractional_second_timestamps_validate_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = throughput_trace(samples=40, links=1).drop(columns=["epoch_time"])
    offsets = np.random.default_rng(1).uniform(-0.2, 0.2, 40)
    moments = pd.to_datetime((START_S + np.arange(40) + offsets) * 1e9, utc=True)
    trace.insert(0, "timestamp", moments.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    path = _csv(trace, tmp_path / "fractional.csv")
    assert main(["validate", str(path), "--models", "bandwidth_predictor"]) == 0
    assert "row(s) snapped to the grid" in capsys.readouterr().out
    data = load_validated_telemetry(path, request=DataRequest(models=("bandwidth_predictor",)))
    assert data.metrics["epoch_time"].tolist() == (START_S + np.arange(40)).tolist()


def test_hourly_data_validates_and_windows_on_the_hour(tmp_path: Path) -> None:
    trace = throughput_trace(interval_s=3600, samples=48, links=1)
    trace.loc[5, "epoch_time"] += 120  # two minutes late: snapped back to the hour
    trace = trace.drop(index=[20])  # one hour missing
    path = _csv(trace, tmp_path / "hourly.csv")
    data = load_validated_telemetry(path, request=DataRequest(models=("bandwidth_predictor",)))
    assert data.interval_s == 3600 and data.report.sampling is not None and data.report.sampling.rows_snapped == 1
    windows, target, _ = link_windows(data, data.features("bandwidth_predictor"))
    # 47 hours with a gap after hour 19: segments of 20 and 27 samples give 10 + 17 windows of 11.
    assert len(windows.inputs) == 27 and windows.gaps["windows_dropped_at_gaps"] == 10
    first = windows.frame["epoch_time"].to_numpy()[windows.last_rows[0]]
    assert first == START_S + 9 * 3600


def test_explicit_features_are_used_and_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = throughput_trace(samples=40, links=1).assign(rtt_ms=20.0, jitter_ms=1.0)
    path = _csv(trace, tmp_path / "t.csv")
    chosen = ["--models", "bandwidth_predictor", "--features", "bandwidth_predictor=throughput_mbps,rtt_ms"]
    assert main(["validate", str(path), *chosen]) == 0
    assert "features: rtt_ms, throughput_mbps; optional features absent: jitter_ms," in capsys.readouterr().out
    data = load_validated_telemetry(
        path, request=DataRequest(("bandwidth_predictor",), {"bandwidth_predictor": ("throughput_mbps", "rtt_ms")})
    )
    assert [f.name for f in data.features("bandwidth_predictor")] == ["rtt_ms", "throughput_mbps"]  # input order

    assert main(["validate", str(path), "--features", "bandwidth_predictor=throughput_mbps,rtt_millis"]) == 2
    err = capsys.readouterr().err
    assert "bandwidth_predictor has no feature 'rtt_millis'; its features are rtt_ms, jitter_ms" in err
    assert main(["validate", str(path), "--features", "bandwidth_predictor=rtt_ms"]) == 2
    assert "cannot leave out its core feature(s) throughput_mbps" in capsys.readouterr().err
    missing = ["--models", "bandwidth_predictor", "--features", "bandwidth_predictor=throughput_mbps,packet_loss_ratio"]
    assert main(["validate", str(path), *missing]) == 1
    assert "column 'packet_loss_ratio': column needed by bandwidth_predictor is missing" in capsys.readouterr().out
    no_core = _csv(trace.drop(columns=["throughput_mbps"]), tmp_path / "no_core.csv")
    assert main(["validate", str(no_core), "--models", "bandwidth_predictor"]) == 1
    assert "column 'throughput_mbps': column needed by bandwidth_predictor is missing" in capsys.readouterr().out


def test_irregular_sampling_is_a_problem_naming_file_column_and_rows(tmp_path: Path) -> None:
    trace = throughput_trace(interval_s=60, samples=40, links=1)
    trace.loc[[3, 9, 15], "epoch_time"] += 30  # half an interval off: no slot is near
    path = _csv(trace, tmp_path / "irregular.csv")
    report = validate_files(path, request=DataRequest(models=("bandwidth_predictor",)))
    [problem] = report.problems
    assert problem.file == str(path) and problem.column == "epoch_time" and problem.rows == [4, 10, 16]
    assert "3 row(s) (7.5%) lie more than 25% of the 60 s interval off the sample grid" in problem.message
    assert "--snap-tolerance" in problem.expected

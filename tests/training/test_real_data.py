"""`make evaluate-real` end to end on tiny raw files made here, against the committed model set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.real_data import main, pooled_detection, pooled_mae

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(0)


def _trace(path: Path, seconds: int, packets_per_s: float) -> None:
    """A mahimahi trace: one millisecond stamp per 1500-byte delivery opportunity."""
    stamps = np.sort(RNG.integers(0, seconds * 1000, int(seconds * packets_per_s)))
    path.write_text("\n".join(map(str, stamps)) + "\n")


def _nab(root: Path) -> None:
    """A NAB-shaped tree: two 5-minute series, one with a labelled window, one without."""
    times = pd.date_range("2014-02-14", periods=400, freq="5min")
    for folder, name, base in [("realKnownCause", "lat_a.csv", 40.0), ("artificialNoAnomaly", "flat_b.csv", 20.0)]:
        (root / "data" / folder).mkdir(parents=True)
        values = base * np.exp(0.05 * RNG.standard_normal(len(times)))
        if name == "lat_a.csv":
            values[300:310] *= 30  # the labelled anomaly
        pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M:%S"), "value": values}).to_csv(
            root / "data" / folder / name, index=False
        )
    (root / "labels").mkdir()
    window = [["2014-02-15 00:50:00.000000", "2014-02-15 01:40:00.000000"]]
    labels = {"realKnownCause/lat_a.csv": window, "artificialNoAnomaly/flat_b.csv": []}
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))


def test_committed_models_are_scored_on_imported_real_style_files(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    _trace(traces / "cell.down", 120, 400.0)
    _trace(traces / "cell.up", 120, 150.0)
    (traces / "empty.down").write_text("")  # skipped, as the empty public traces are
    _nab(tmp_path / "nab")
    out = tmp_path / "report"
    args = ["--mahimahi", str(traces), "--nab", str(tmp_path / "nab"), "--models-dir", str(ROOT / "models")]
    assert main([*args, "--out", str(out)]) == 0
    results = json.loads((out / "real_data_report.json").read_text())
    assert sorted(results["mahimahi"]) == ["cell.down", "cell.up"]
    assert all(100 <= r["metrics"]["rows"] <= 120 - 10 for r in results["mahimahi"].values())
    assert sorted(results["nab"]) == ["artificialNoAnomaly/flat_b.csv", "realKnownCause/lat_a.csv"]
    assert results["nab"]["realKnownCause/lat_a.csv"]["metrics"]["positives"] > 0
    text = (out / "README.md").read_text()
    assert "## Bandwidth: mahimahi" in text and "## Consensus latency: NAB" in text
    assert (out / "plots" / "real_bandwidth_mae_ratio.png").stat().st_size > 0


def test_pooled_figures_weight_each_series_by_its_windows() -> None:
    results = {
        "a": {"metrics": {"rows": 100.0, "mae": 1.0}, "baselines": {"persistence": {"mae": 2.0}}},
        "b": {"metrics": {"rows": 300.0, "mae": 3.0}, "baselines": {"persistence": {"mae": 2.0}}},
    }
    assert pooled_mae(results) == {"model": 2.5, "persistence": 2.0}
    detection = {
        "a": {
            "metrics": {"rows": 100.0, "positives": 10.0, "recall": 0.5, "false_positive_rate": 0.1},
            "baselines": {},
        },
        "b": {"metrics": {"rows": 100.0, "positives": 0.0, "recall": 0.0, "false_positive_rate": 0.0}, "baselines": {}},
    }
    pooled = pooled_detection(detection)["model"]
    assert pooled["recall"] == 0.5 and pooled["false_positive_rate"] == pytest.approx(9 / 190)
    assert pooled["precision"] == pytest.approx(5 / 14)

"""Importer (c): NAB-style labelled series become latency telemetry plus incidents on the series' node."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.training.importers.conftest import Run, read_outputs
from training.validate import validate_files


@pytest.fixture
def nab(tmp_path: Path) -> tuple[Path, Path]:
    """A data root with two series (5-minute, seconds values) and NAB's labels layout."""
    root = tmp_path / "data"
    for name, start in (("realA/lat_a.csv", "2014-02-14 00:00:00"), ("realB/lat_b.csv", "2014-03-01 12:00:00")):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        stamps = pd.date_range(start, periods=12, freq="5min").strftime("%Y-%m-%d %H:%M:%S")
        pd.DataFrame({"timestamp": stamps, "value": [0.02] * 10 + [1.5, 2.0]}).to_csv(root / name, index=False)
    labels = tmp_path / "combined_windows.json"
    labels.write_text(
        json.dumps(
            {"realA/lat_a.csv": [["2014-02-14 00:50:00.000000", "2014-02-14 00:55:00.000000"]], "realB/lat_b.csv": []}
        )
    )
    return root, labels


def test_series_and_windows_become_latency_and_incidents(nab: tuple[Path, Path], run_import: Run) -> None:
    root, labels = nab
    out = root.parent / "nab.parquet"
    code, stdout, err = run_import("nab", "--data-root", root, "--labels", labels, "--unit", "value=s", "--out", out)
    assert code == 0, err
    assert "import [2/2]" in err and "1 incidents" in stdout
    frame, manifest = read_outputs(out)
    assert list(frame.columns) == ["timestamp", "epoch_time", "node_id", "peer_id", "consensus_latency_ms"]
    assert sorted(set(frame["node_id"])) == ["lat_a", "lat_b"] and (frame["peer_id"] == frame["node_id"]).all()
    assert frame.loc[frame["node_id"] == "lat_a", "consensus_latency_ms"].tolist()[-3:] == [20.0, 1500.0, 2000.0]
    incidents = json.loads((root.parent / "nab.incidents.json").read_text())
    # The window includes its end stamp (00:55); the exclusive end is one 5-minute sample later.
    assert incidents == [
        {
            "incident_id": "lat_a-w1",
            "node_id": "lat_a",
            "incident_type": "degradation",
            "severity": "medium",
            "start": "2014-02-14T00:50:00Z",
            "end": "2014-02-14T01:00:00Z",
        }
    ]
    assert manifest["columns"]["consensus_latency_ms"] == {"source": "value", "unit": "s"}
    assert manifest["incidents"]["count"] == 1
    # The latency series and its incidents validate as they are: the consensus model can train on them.
    report = validate_files(out, root.parent / "nab.incidents.json")
    assert report.ok, report.format()
    assert "MODEL consensus_latency: can train" in report.format()


def test_mapping_can_send_value_elsewhere(nab: tuple[Path, Path], run_import: Run) -> None:
    root, labels = nab
    out = root.parent / "nab.parquet"
    code, _, err = run_import(
        "nab", "realB/lat_b.csv", "--data-root", root, "--labels", labels,
        "--map", "value=p99_latency_ms", "--node-id", "node-{stem}", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    frame, _ = read_outputs(out)
    assert "p99_latency_ms" in frame.columns and "consensus_latency_ms" not in frame.columns
    assert set(frame["node_id"]) == {"node-lat_b"}


def test_labels_naming_a_missing_file(nab: tuple[Path, Path], run_import: Run) -> None:
    root, labels = nab
    (root / "realB" / "lat_b.csv").unlink()
    error = run_import.error("nab", "--data-root", root, "--labels", labels, "--out", root.parent / "o.parquet")
    assert f"names 'realB/lat_b.csv', which is not a file under {root}" in error


def test_file_the_labels_do_not_name(nab: tuple[Path, Path], run_import: Run) -> None:
    root, labels = nab
    (root / "realA" / "other.csv").write_text("timestamp,value\n2014-02-14 00:00:00,1\n")
    error = run_import.error(
        "nab", "realA/other.csv", "--data-root", root, "--labels", labels, "--out", root.parent / "o.parquet"
    )
    assert "realA/other.csv: not named in" in error


def test_bad_window_timestamp(nab: tuple[Path, Path], run_import: Run) -> None:
    root, labels = nab
    labels.write_text(json.dumps({"realA/lat_a.csv": [["2014-02-14 00:50:00", "soon"]], "realB/lat_b.csv": []}))
    error = run_import.error("nab", "--data-root", root, "--labels", labels, "--out", root.parent / "o.parquet")
    assert "'realA/lat_a.csv'" in error and "rows 2 ('soon')" in error

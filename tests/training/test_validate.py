"""Every validation problem is caught with file, column, rows and what was expected; never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from training.cli import main
from training.datagen import DatagenConfig, write_dataset
from training.validate import (
    DataRequest,
    Problem,
    TelemetryValidationError,
    ValidationReport,
    load_validated_telemetry,
    validate_files,
)

CONFIG = DatagenConfig(nodes=4, hours=2, interval_s=60, seed=5, missing_share=0.0, incidents_per_node_day=0.0)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("valid")
    write_dataset(CONFIG, out, progress=False)
    return out


@pytest.fixture
def text_frame(source: Path) -> pd.DataFrame:
    """The valid CSV as text cells, so edits change exactly what a user's file would contain."""
    return pd.read_csv(source / "metrics_train.csv", dtype=str, keep_default_na=False)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _only(report: ValidationReport, column: str | None, contains: str) -> Problem:
    found = [p for p in report.problems if p.column == column and contains in p.message]
    assert found, report.format()
    return found[0]


def test_valid_file_passes(source: Path) -> None:
    report = validate_files(source / "metrics_train.csv")
    assert report.ok, report.format()
    assert main(["validate", str(source / "metrics_train.parquet")]) == 0


def test_missing_core_column_of_a_chosen_model(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    path = _write(text_frame.drop(columns=["throughput_mbps"]), tmp_path / "m.csv")
    problem = _only(
        validate_files(path, request=DataRequest(models=("bandwidth_predictor",))),
        "throughput_mbps",
        "column needed by bandwidth_predictor is missing",
    )
    assert problem.file == str(path)
    assert ">= 0" in problem.expected and "Mbps" in problem.expected


def test_missing_optional_column_is_reported_not_rejected(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    report = validate_files(_write(text_frame.drop(columns=["rtt_ms"]), tmp_path / "m.csv"))
    assert report.ok, report.format()
    bandwidth = next(m for m in report.models if m.model == "bandwidth_predictor")
    assert bandwidth.can_train and "rtt_ms" not in bandwidth.features and bandwidth.absent == ("rtt_ms",)
    assert "optional features absent: rtt_ms" in report.format()


def test_unknown_column(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    path = _write(text_frame.assign(rtt_millis="1"), tmp_path / "m.csv")
    problem = _only(validate_files(path), "rtt_millis", "unknown column")
    assert "telemetry-schema" in problem.expected


def test_wrong_type_names_rows(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    text_frame.loc[[2, 7], "rtt_ms"] = "fast"
    problem = _only(validate_files(_write(text_frame, tmp_path / "m.csv")), "rtt_ms", "wrong type")
    assert problem.rows == [3, 8]  # 1-based data rows
    assert "number" in problem.expected
    assert "rows 3, 8" in problem.format() and "rtt_ms" in problem.format()


def test_fractional_integer(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    text_frame.loc[4, "retransmits"] = "2.5"
    problem = _only(validate_files(_write(text_frame, tmp_path / "m.csv")), "retransmits", "fractional")
    assert problem.rows == [5] and "integer" in problem.expected


def test_out_of_range(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    text_frame.loc[0, "uptime_pct"] = "150"
    text_frame.loc[9, "rtt_ms"] = "0"
    report = validate_files(_write(text_frame, tmp_path / "m.csv"))
    assert _only(report, "uptime_pct", "out of range").rows == [1]
    rtt = _only(report, "rtt_ms", "out of range")
    assert rtt.rows == [10] and "> 0" in rtt.expected


def test_unknown_category(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    text_frame.loc[3, "link_type"] = "satellite"
    problem = _only(validate_files(_write(text_frame, tmp_path / "m.csv")), "link_type", "unknown categories")
    assert "'satellite'" in problem.message and problem.rows == [4]
    assert "dc, metro, wan, edge" in problem.expected


def test_too_many_missing(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    text_frame.loc[text_frame.index[::10], "jitter_ms"] = ""
    problem = _only(validate_files(_write(text_frame, tmp_path / "m.csv")), "jitter_ms", "missing")
    assert problem.rows[0] == 1 and "5%" in problem.expected


def test_few_missing_is_a_notice(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    text_frame.loc[[5], "jitter_ms"] = ""
    report = validate_files(_write(text_frame, tmp_path / "m.csv"))
    assert report.ok
    assert any(n.column == "jitter_ms" and "1 missing" in n.message for n in report.notices)


def test_timestamps_backwards_within_link(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    first = text_frame.loc[0]
    link = (text_frame["node_id"] == first["node_id"]) & (text_frame["peer_id"] == first["peer_id"])
    rows = text_frame.index[link]
    late = rows[5]
    text_frame.loc[late, ["timestamp", "epoch_time"]] = text_frame.loc[rows[1], ["timestamp", "epoch_time"]].to_numpy()
    problem = _only(validate_files(_write(text_frame, tmp_path / "m.csv")), "timestamp", "backwards")
    assert problem.rows == [late + 1]


def test_timestamp_not_iso_utc(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    text_frame.loc[1, "timestamp"] = "05/01/2026 00:00"
    problem = _only(validate_files(_write(text_frame, tmp_path / "m.csv")), "timestamp", "ISO 8601")
    assert problem.rows == [2]


def test_alias_with_ratio_values_is_accepted_with_notice(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    path = _write(text_frame.rename(columns={"packet_loss_ratio": "packet_loss"}), tmp_path / "m.csv")
    report = validate_files(path)
    assert report.ok, report.format()
    assert report.column_map["packet_loss"] == "packet_loss_ratio"
    assert any(n.column == "packet_loss" and "packet_loss_ratio" in n.message for n in report.notices)
    assert "packet_loss_ratio" in load_validated_telemetry(path).metrics.columns


def test_alias_with_percent_values_is_rejected(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    frame = text_frame.rename(columns={"packet_loss_ratio": "packet_loss"})
    frame["packet_loss"] = (frame["packet_loss"].astype(float) * 100).astype(str)
    frame.loc[0, "packet_loss"] = "2.5"  # at least one value only a percentage can be
    problem = _only(validate_files(_write(frame, tmp_path / "m.csv")), "packet_loss", "percentage")
    assert "0-1" in problem.expected and problem.rows[0] == 1


def test_percent_in_canonical_ratio_column_is_rejected(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    text_frame.loc[2, "slo_compliance"] = "99.5"
    _only(validate_files(_write(text_frame, tmp_path / "m.csv")), "slo_compliance", "percentage")


def test_alias_and_canonical_together(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    path = _write(text_frame.assign(packet_loss=text_frame["packet_loss_ratio"]), tmp_path / "m.csv")
    _only(validate_files(path), "packet_loss", "both")


def _incidents(tmp_path: Path, records: object) -> Path:
    path = tmp_path / "incidents.json"
    path.write_text(json.dumps(records))
    return path


# An incident record that validates against the `source` fixture's metrics.
GOOD_INCIDENT = {
    "node_id": "node-0000",
    "incident_type": "degradation",
    "severity": "low",
    "start": "2026-01-05T00:10:00Z",
    "end": "2026-01-05T00:20:00Z",
}


def test_incident_matching_no_node(source: Path, tmp_path: Path) -> None:
    good = GOOD_INCIDENT
    records = [good, {**good, "node_id": "node-9999"}]
    report = validate_files(source / "metrics_train.csv", _incidents(tmp_path, records))
    problem = _only(report, "node_id", "matches no node")
    assert problem.rows == [2] and problem.file.endswith("incidents.json")
    assert "records 2" in problem.format()


def test_quorum_node_ids_must_list_nodes_of_the_metrics(source: Path, tmp_path: Path) -> None:
    good = {
        **GOOD_INCIDENT,
        "quorum_node_ids": ["node-0000", "node-0001"],
    }
    records = [good, {**good, "quorum_node_ids": []}, {**good, "quorum_node_ids": "node-0001"}]
    records += [{**good, "quorum_node_ids": ["node-0001", ""]}, {**good, "quorum_node_ids": ["node-9999"]}]
    report = validate_files(source / "metrics_train.csv", _incidents(tmp_path, records))
    assert _only(report, "quorum_node_ids", "not a list of non-empty strings").rows == [3, 4]
    assert _only(report, "quorum_node_ids", "names a node with no metrics rows").rows == [5]
    assert len(report.problems) == 2, report.format()


def test_incident_fields_checked(source: Path, tmp_path: Path) -> None:
    records = [
        {
            "node_id": "node-0000",
            "incident_type": "meteor",
            "severity": "low",
            "start": "2026-01-05T00:10:00",
            "end": "2026-01-05T00:20:00Z",
        },
        {
            "node_id": "node-0000",
            "incident_type": "partition",
            "severity": "high",
            "start": "2026-01-05T00:30:00Z",
            "end": "2026-01-05T00:20:00Z",
        },
        {
            "incident_type": "partition",
            "severity": "high",
            "start": "2026-01-05T00:30:00Z",
            "end": "2026-01-05T00:40:00Z",
        },
        "not an object",
    ]
    report = validate_files(source / "metrics_train.csv", _incidents(tmp_path, records))
    assert _only(report, "incident_type", "unknown category").rows == [1]
    assert _only(report, "start", "ISO 8601 UTC").rows == [1]
    assert _only(report, "end", "not after start").rows == [2]
    assert _only(report, "node_id", "missing").rows == [3]
    assert _only(report, None, "not a JSON object").rows == [4]


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


BAD_FILES: dict[str, Callable[[Path], Path]] = {
    "missing": lambda d: d / "nope.csv",
    "empty": lambda d: (d / "empty.csv", (d / "empty.csv").write_text(""))[0],
    "header only": lambda d: (d / "h.csv", (d / "h.csv").write_text("timestamp,rtt_ms\n"))[0],
    "corrupt parquet": lambda d: (d / "x.parquet", (d / "x.parquet").write_bytes(b"PAR1 not really"))[0],
    "unknown format": lambda d: (d / "x.xlsx", (d / "x.xlsx").write_bytes(b"data"))[0],
    "directory": lambda d: _directory(d / "sub.csv"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_unusable_files_are_reported_not_raised(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = BAD_FILES[case](tmp_path)
    report = validate_files(path)
    assert not report.ok and report.problems[0].file == str(path)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err and str(path) in out.out


def test_bad_incidents_file_is_reported(source: Path, tmp_path: Path) -> None:
    path = tmp_path / "inc.json"
    path.write_text("{not json")
    problem = _only(validate_files(source / "metrics_train.csv", path), None, "not valid JSON")
    assert problem.file == str(path)
    path.write_text('{"incidents": []}')
    _only(validate_files(source / "metrics_train.csv", path), None, "JSON array")


def test_cli_exit_code_and_output(text_frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text_frame.loc[0, "network_tier"] = "gold"
    path = _write(text_frame, tmp_path / "m.csv")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"ERROR {path}: column 'network_tier': unknown categories 'gold'; rows 1; expected one of tier1" in out


def test_load_validated_telemetry_raises_with_report(text_frame: pd.DataFrame, tmp_path: Path) -> None:
    text_frame.loc[0, "dwcp_mode"] = "turbo"
    with pytest.raises(TelemetryValidationError) as caught:
        load_validated_telemetry(_write(text_frame, tmp_path / "m.csv"))
    assert not caught.value.report.ok and "dwcp_mode" in str(caught.value)


def test_nothing_is_dropped_or_coerced(source: Path) -> None:
    loaded = load_validated_telemetry(source / "metrics_train.csv", source / "incidents_train.json")
    raw = pd.read_csv(source / "metrics_train.csv")
    assert len(loaded.metrics) == len(raw)
    assert loaded.metrics["rtt_ms"].equals(raw["rtt_ms"])
    assert str(loaded.metrics["timestamp"].dt.tz) == "UTC"

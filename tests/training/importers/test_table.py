"""Importer (a): CSV/Parquet series mapped onto telemetry columns with unit conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.training.importers.conftest import Run, read_outputs
from training.validate import validate_files


def _nab_like_csv(path: Path, values: list[float], start: str = "2014-02-14 14:27:00") -> Path:
    stamps = pd.date_range(start, periods=len(values), freq="5min").strftime("%Y-%m-%d %H:%M:%S")
    pd.DataFrame({"timestamp": stamps, "value": values}).to_csv(path, index=False)
    return path


def test_timestamp_value_csv_in_kbps_becomes_throughput_mbps(tmp_path: Path, run_import: Run) -> None:
    source = _nab_like_csv(tmp_path / "link-7.csv", [1500.0, 0.0, 250.0])
    out = tmp_path / "out" / "t.parquet"
    code, stdout, err = run_import(
        "table", source, "--map", "value=throughput_mbps", "--unit", "value=kbps",
        "--node-id", "fra", "--peer-id", "{stem}", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert "import [1/1]" in err and "3 rows" in err
    frame, manifest = read_outputs(out)
    # Only identity, time and the one mapped column: nothing invented for the 27 others.
    assert list(frame.columns) == ["timestamp", "epoch_time", "node_id", "peer_id", "throughput_mbps"]
    assert frame["throughput_mbps"].tolist() == [1.5, 0.0, 0.25]
    assert set(frame["peer_id"]) == {"link-7"} and set(frame["node_id"]) == {"fra"}
    assert frame["epoch_time"].tolist() == [1392388020, 1392388320, 1392388620]
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert manifest["columns"]["throughput_mbps"] == {"source": "value", "unit": "kbps"}
    assert manifest["rows"] == 3 and manifest["series"][0]["median_interval_s"] == 300.0
    assert str(out) in stdout


def test_named_columns_with_a_series_column_convert_each_unit(tmp_path: Path, run_import: Run) -> None:
    source = tmp_path / "hosts.parquet"
    pd.DataFrame(
        {
            "t_ms": [2_000, 1_000, 1_000, 2_000],  # epoch milliseconds, the first host's rows out of order
            "host": ["a", "a", "b", "b"],
            "rtt": [0.020, 0.010, 0.5, 0.25],  # seconds
            "loss": [1.0, 0.0, 50.0, 100.0],  # percent
        }
    ).to_parquet(source)
    out = tmp_path / "t.parquet"
    code, _, err = run_import(
        "table", source, "--map", "t_ms=epoch_time", "--unit", "t_ms=ms", "--map", "host=node_id",
        "--peer-id", "{node_id}", "--map", "rtt=rtt_ms", "--unit", "rtt=s",
        "--map", "loss=packet_loss_ratio", "--unit", "loss=percent", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    frame, manifest = read_outputs(out)
    assert frame["node_id"].tolist() == ["a", "a", "b", "b"]
    assert (frame["peer_id"] == frame["node_id"]).all()
    assert frame["epoch_time"].tolist() == [1, 2, 1, 2]
    np.testing.assert_allclose(frame["rtt_ms"], [10.0, 20.0, 500.0, 250.0])
    np.testing.assert_allclose(frame["packet_loss_ratio"], [0.0, 0.01, 0.5, 1.0])
    assert manifest["files"][0]["rows_out_of_order_sorted"] == 1
    # RTT and loss alone feed no model: validate says which columns each one lacks.
    report = validate_files(out)
    assert not report.ok and "no model can train on this file" in report.format()
    assert "MODEL bandwidth_predictor: cannot train: column throughput_mbps missing" in report.format()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--map", "val=throughput_mbps"], "column 'val' is not in the file; its columns: timestamp, value"),
        (["--map", "value=throughput"], "unknown telemetry column 'throughput'; known: timestamp, epoch_time"),
        ([], "column 'value' is not a telemetry column and is not mapped; map it (--map value=COLUMN)"),
    ],
    ids=["unknown source column", "unknown telemetry column", "unmapped source column"],
)
def test_unknown_column_is_named(tmp_path: Path, run_import: Run, args: list[str], expected: str) -> None:
    source = _nab_like_csv(tmp_path / "s.csv", [1.0, 2.0])
    error = run_import.error("table", source, *args, "--node-id", "n", "--peer-id", "p", "--out", tmp_path / "o.pq")
    assert expected in error
    assert not (tmp_path / "o.pq").exists()


def test_unknown_unit_lists_the_known_ones(tmp_path: Path, run_import: Run) -> None:
    source = _nab_like_csv(tmp_path / "s.csv", [1.0, 2.0])
    error = run_import.error(
        "table", source, "--map", "value=throughput_mbps", "--unit", "value=kbit",
        "--node-id", "n", "--peer-id", "p", "--out", tmp_path / "o.parquet",
    )  # fmt: skip
    assert "column 'value' (-> throughput_mbps, Mbps): unknown unit 'kbit'" in error
    assert "known: bps, kbps, Mbps, Gbps" in error


def test_unmapped_node_id_says_how_to_give_it(tmp_path: Path, run_import: Run) -> None:
    source = _nab_like_csv(tmp_path / "s.csv", [1.0, 2.0])
    error = run_import.error(
        "table", source, "--map", "value=rtt_ms", "--peer-id", "p", "--out", tmp_path / "o.parquet"
    )
    assert "no node_id: map a column to it (--map COLUMN=node_id) or give --node-id ID" in error


def test_bad_timestamps_name_the_rows(tmp_path: Path, run_import: Run) -> None:
    source = tmp_path / "s.csv"
    source.write_text("timestamp,value\n2014-02-14 14:27:00,1\nyesterday,2\n2014-02-14 14:37:00,3\n")
    error = run_import.error(
        "table", source, "--map", "value=rtt_ms", "--node-id", "n", "--peer-id", "p", "--out", tmp_path / "o.parquet"
    )
    assert "column 'timestamp': 1 bad timestamp(s): rows 2 ('yesterday')" in error


def test_converted_whole_numbers_stay_integers(tmp_path: Path, run_import: Run) -> None:
    source = tmp_path / "s.csv"
    source.write_text("timestamp,sent\n2026-01-05T00:00:00Z,1.5\n2026-01-05T00:00:01Z,2\n")
    out = tmp_path / "o.parquet"
    code, _, err = run_import(
        "table", source, "--map", "sent=bytes_tx", "--unit", "sent=kB",
        "--node-id", "n", "--peer-id", "p", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    frame, _ = read_outputs(out)
    assert frame["bytes_tx"].dtype == np.int64 and frame["bytes_tx"].tolist() == [1500, 2000]
    report = validate_files(out)
    assert not report.ok and "no model can train on this file" in report.format()

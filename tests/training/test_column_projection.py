"""Training reads only the columns its models need; validate still checks every column, one at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import training.telemetry_io as telemetry_io
from training.validate import DataRequest, load_validated_telemetry, validate_files
from training.windows import make_windows, sort_by_group_time

START_S = 1_767_571_200  # 2026-01-05T00:00:00Z
BANDWIDTH = DataRequest(models=("bandwidth_predictor",))


def _trace(samples: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "epoch_time": START_S + np.arange(samples),
            "node_id": "n0",
            "peer_id": "server",
            "throughput_mbps": rng.uniform(40, 60, samples).round(3),
            "rtt_ms": rng.uniform(10, 20, samples).round(3),
            # A schema column no bandwidth feature uses, holding text: converting it would fail.
            "bytes_tx": ["not a number"] * samples,
        }
    )


@pytest.fixture
def read_columns(monkeypatch: pytest.MonkeyPatch) -> list[list[str] | None]:
    """The `columns` of every pyarrow Parquet read the loader makes (None: the whole file)."""
    calls: list[list[str] | None] = []
    real = telemetry_io.pq.read_table

    def spy(source: Any, columns: list[str] | None = None, **kwargs: Any) -> pa.Table:
        calls.append(None if columns is None else list(columns))
        return real(source, columns=columns, **kwargs)

    monkeypatch.setattr(telemetry_io.pq, "read_table", spy)
    return calls


def test_training_one_model_never_reads_a_column_it_does_not_use(
    tmp_path: Path, read_columns: list[list[str] | None]
) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(pa.Table.from_pandas(_trace(), preserve_index=False), path)
    assert not validate_files(path).ok  # validate checks every column: bytes_tx is text
    read_columns.clear()
    data = load_validated_telemetry(path, request=BANDWIDTH)
    assert None not in read_columns and all("bytes_tx" not in c for c in read_columns if c is not None)
    loaded = ["epoch_time", "node_id", "peer_id", "rtt_ms", "throughput_mbps", "timestamp"]
    assert sorted(data.metrics.columns) == loaded
    assert [f.name for f in data.features("bandwidth_predictor")] == ["rtt_ms", "throughput_mbps"]
    assert data.report.rows == 40 and data.report.ok


def test_csv_is_parsed_only_for_the_needed_columns(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    _trace().to_csv(path, index=False)
    data = load_validated_telemetry(path, request=BANDWIDTH)
    assert "bytes_tx" not in data.metrics.columns
    chosen = DataRequest(models=("bandwidth_predictor",), features={"bandwidth_predictor": ("throughput_mbps",)})
    assert "rtt_ms" not in load_validated_telemetry(path, request=chosen).metrics.columns


def test_an_unknown_column_is_still_a_problem_when_its_data_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    frame = _trace().drop(columns=["bytes_tx"]).assign(notes="x")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    with pytest.raises(Exception, match="unknown column"):
        load_validated_telemetry(path, request=BANDWIDTH)


def test_window_inputs_are_the_rows_of_each_window() -> None:
    times = np.r_[np.arange(15), np.arange(20, 40)] * 60.0  # a gap after 15 samples
    x = np.arange(len(times), dtype=float)
    x[25] = np.nan  # windows holding row 25 are incomplete
    frame = sort_by_group_time(
        pd.DataFrame({"node_id": "a", "peer_id": "b", "epoch_time": times, "x": x, "y": -x}), ("node_id", "peer_id")
    )
    windows = make_windows(frame, ("node_id", "peer_id"), ["x", "y"], steps=5, interval_s=60.0)
    expected = [frame[["x", "y"]].to_numpy(np.float32)[s : s + 5] for s in windows.target_rows - 5]
    assert np.array_equal(np.asarray(windows.inputs), np.stack(expected))
    assert np.isfinite(np.asarray(windows.inputs)).all() and windows.dropped_incomplete == 6
    assert windows.inputs.shape == (len(expected), 5, 2) and windows.inputs[[2, 0]].shape == (2, 5, 2)
    assert windows.inputs[:, :, 1].tolist() == [list(-w[:, 0]) for w in expected]
    assert windows.inputs[3, :, 0].tolist() == list(expected[3][:, 0])

"""write_dataset: same seed same bytes, train/test ranges, files that pass validation."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from training.datagen import DatagenConfig, generate, write_dataset
from training.validate import validate_files

TINY = DatagenConfig(nodes=5, hours=6, interval_s=60, seed=11, incidents_per_node_day=4.0, chunk_rows=2_000)


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    write_dataset(TINY, out, progress=False)
    return out


def test_same_seed_same_bytes(written: Path, tmp_path: Path) -> None:
    write_dataset(TINY, tmp_path, progress=False)
    assert _files(tmp_path) == _files(written)


def test_other_seed_other_data(written: Path, tmp_path: Path) -> None:
    write_dataset(DatagenConfig(**{**TINY.to_dict(), "seed": 12}), tmp_path, progress=False)
    assert _files(tmp_path)["metrics_train.parquet"] != _files(written)["metrics_train.parquet"]


def test_layout_and_time_ranges(written: Path) -> None:
    names = set(_files(written))
    assert names == {
        "metrics_train.parquet",
        "metrics_train.csv",
        "metrics_test.parquet",
        "metrics_test.csv",
        "incidents_train.json",
        "incidents_test.json",
        "dataset.json",
    }
    summary = json.loads((written / "dataset.json").read_text())
    train = pq.read_table(written / "metrics_train.parquet").column("epoch_time").to_numpy()
    test = pq.read_table(written / "metrics_test.parquet").column("epoch_time").to_numpy()
    assert train.max() < test.min()  # the test range is later, not interleaved
    assert summary["splits"]["train"]["rows"] == train.size
    assert summary["splits"]["test"]["rows"] == test.size
    assert test.size == pytest.approx(0.2 * (train.size + test.size), rel=0.05)


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_written_files_validate(written: Path, split: str, fmt: str) -> None:
    report = validate_files(written / f"metrics_{split}.{fmt}", written / f"incidents_{split}.json")
    assert report.ok, report.format()


def test_generate_matches_written_rows(written: Path) -> None:
    frame = generate(TINY).metrics
    train = pq.read_table(written / "metrics_train.parquet").to_pandas()
    assert list(frame.columns) == list(train.columns)
    head = frame.iloc[: len(train)].reset_index(drop=True)
    assert head[["rtt_ms", "throughput_mbps", "node_id"]].equals(train[["rtt_ms", "throughput_mbps", "node_id"]])


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="nodes"):
        DatagenConfig(nodes=2)

"""Importer (b): mahimahi delivery traces become per-interval throughput, one link per trace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.training.importers.conftest import Run, read_outputs
from training.importers.mahimahi import throughput_mbps

MBPS_PER_PACKET_PER_S = 1500 * 8 / 1e6  # one 1500-byte packet in one second


def _trace(path: Path, stamps: list[int]) -> Path:
    path.write_text("".join(f"{ms}\n" for ms in stamps))
    return path


def test_deliveries_per_second_become_mbps_and_empty_seconds_are_zero(tmp_path: Path, run_import: Run) -> None:
    # 4 packets in second 0 (two share a millisecond), none in second 1, 2 in second 2, 1 ending second 3.
    trace = _trace(tmp_path / "Cell-LTE.down", [0, 0, 5, 999, 2500, 2500, 3999])
    out = tmp_path / "mm.parquet"
    code, _, err = run_import(
        "mahimahi", trace, "--node-id", "phone", "--peer-id", "{name}",
        "--start-utc", "2026-01-05T00:00:00Z", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert "7 deliveries -> 4 rows of 1 s" in err
    frame, manifest = read_outputs(out)
    assert list(frame.columns) == ["timestamp", "epoch_time", "node_id", "peer_id", "throughput_mbps"]
    np.testing.assert_allclose(frame["throughput_mbps"], np.array([4, 0, 2, 1]) * MBPS_PER_PACKET_PER_S)
    assert frame["epoch_time"].tolist() == [1767571200 + s for s in range(4)]
    assert set(frame["peer_id"]) == {"Cell-LTE.down"}
    assert manifest["interval_s"] == 1 and manifest["files"][0]["partial_last_interval_dropped"] is False


def test_interval_flag_and_partial_last_interval() -> None:
    ms = np.array([0, 1000, 1999, 2000, 4100])  # ends inside the third 2 s interval
    mbps, dropped = throughput_mbps(ms, interval_s=2)
    np.testing.assert_allclose(mbps, np.array([3, 1]) * MBPS_PER_PACKET_PER_S / 2)
    assert dropped


def test_up_and_down_traces_are_two_links(tmp_path: Path, run_import: Run) -> None:
    up, down = _trace(tmp_path / "T.up", [0, 999]), _trace(tmp_path / "T.down", [0, 1, 2, 999])
    out = tmp_path / "mm.parquet"
    code, _, err = run_import("mahimahi", up, down, "--node-id", "phone", "--peer-id", "{name}", "--out", out)
    assert code == 0, err
    assert err.count("import [") == 2
    frame, manifest = read_outputs(out)
    assert sorted(frame["peer_id"]) == ["T.down", "T.up"]
    # {stem} would name both "T": one link written twice is refused.
    error = run_import.error("mahimahi", up, down, "--node-id", "phone", "--peer-id", "{stem}", "--out", out)
    assert "are both link (phone, T)" in error


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("0\n12.5\n13\n", "1 line(s) are not a whole millisecond stamp >= 0: lines 2 ('12.5')"),
        ("0\n20\n10\n", "line 3: stamp 10 ms is before the previous line's 20 ms"),
        ("", "empty trace (0 bytes)"),
    ],
    ids=["not an integer", "goes back", "empty"],
)
def test_bad_stamps_name_the_line(tmp_path: Path, run_import: Run, lines: str, expected: str) -> None:
    trace = tmp_path / "bad.down"
    trace.write_text(lines)
    error = run_import.error("mahimahi", trace, "--node-id", "p", "--peer-id", "q", "--out", tmp_path / "o.parquet")
    assert expected in error and str(trace) in error


def test_missing_peer_id_is_an_error(tmp_path: Path, run_import: Run) -> None:
    trace = _trace(tmp_path / "t.down", [0, 999])
    error = run_import.error("mahimahi", trace, "--node-id", "phone", "--out", tmp_path / "o.parquet")
    assert "no peer_id: give --peer-id ID" in error

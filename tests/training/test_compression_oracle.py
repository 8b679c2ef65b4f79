"""Tests for the measured zstd curves and the compression-level oracle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.compression_oracle import (
    N_LEVELS,
    REFERENCE_LEVEL,
    ZstdCurves,
    chunk_seconds,
    effective_throughput_mbps,
    main,
    measure_payload,
    non_delta_ratio,
    oracle_levels,
    payload_log,
    payload_random,
    throughput_gain,
)


@pytest.fixture(scope="module")
def curves() -> ZstdCurves:
    return ZstdCurves.load()


def _features(throughput_mbps: float, ratio: float, delta: float = 0.0, rows: int = 1) -> dict[str, np.ndarray]:
    return {
        "throughput_mbps": np.full(rows, throughput_mbps),
        "hde_compression_ratio": np.full(rows, ratio),
        "hde_delta_hit_ratio": np.full(rows, delta),
    }


def test_committed_curves_cover_all_levels_and_payload_classes(curves: ZstdCurves) -> None:
    assert curves.ratio.shape == (5, N_LEVELS)
    assert curves.names[0] == "random" and curves.ratio[0, 1:].max() < 1.01
    assert curves.ratio[-1, REFERENCE_LEVEL] > 5  # the most compressible class really compresses
    assert (curves.compress_s_per_mb[:, 1:] > 0).all() and (curves.compress_s_per_mb[:, 0] == 0).all()
    # zstd 19 is far slower than zstd 1 on every class
    assert (curves.compress_s_per_mb[:, 9] > 5 * curves.compress_s_per_mb[:, 1]).all()


def test_fast_link_with_incompressible_data_sends_uncompressed(curves: ZstdCurves) -> None:
    assert oracle_levels(_features(100_000, 1.0), curves).tolist() == [0]


def test_slow_link_with_compressible_data_compresses_hard(curves: ZstdCurves) -> None:
    assert oracle_levels(_features(1.0, 8.0), curves)[0] >= 5


def test_oracle_is_never_slower_than_a_fixed_level(curves: ZstdCurves) -> None:
    rng = np.random.default_rng(0)
    features = {
        "throughput_mbps": rng.lognormal(5, 2, 500),
        "hde_compression_ratio": 1 + rng.lognormal(0, 1, 500),
        "hde_delta_hit_ratio": rng.random(500),
    }
    best = effective_throughput_mbps(oracle_levels(features, curves), features, curves)
    for level in range(N_LEVELS):
        assert (best >= effective_throughput_mbps(level, features, curves) - 1e-9).all()
    gain = throughput_gain(np.full(500, REFERENCE_LEVEL), features, curves)
    assert gain["gain_vs_level3_pct"] == pytest.approx(0.0)
    assert gain["gain_vs_oracle_pct"] < 0


def test_array_features_in_contract_order_match_named_features(curves: ZstdCurves) -> None:
    named = _features(50.0, 3.0, 0.2, rows=3)
    x = np.zeros((3, 6))
    x[:, 0], x[:, 3], x[:, 4] = named["throughput_mbps"], named["hde_compression_ratio"], named["hde_delta_hit_ratio"]
    np.testing.assert_array_equal(oracle_levels(x, curves), oracle_levels(named, curves))


def test_delta_hits_raise_throughput_and_imply_less_compressible_rest(curves: ZstdCurves) -> None:
    assert non_delta_ratio(np.array([4.0]), np.array([0.5]))[0] < 4.0
    assert non_delta_ratio(np.array([4.0]), np.array([0.0]))[0] == pytest.approx(4.0)
    no_delta = chunk_seconds(np.array([100.0]), np.array([1.0]), np.array([0.0]), curves)
    half_delta = chunk_seconds(np.array([100.0]), np.array([1.0]), np.array([0.5]), curves)
    assert half_delta[0, 0] < no_delta[0, 0]


def test_measurement_reports_ratios_and_speeds() -> None:
    random_curve = measure_payload(payload_random(64 * 1024), min_total_s=0.0)
    log_curve = measure_payload(payload_log(64 * 1024), min_total_s=0.0)
    assert len(random_curve["ratio"]) == N_LEVELS and random_curve["ratio"][0] == 1.0
    assert max(random_curve["ratio"]) < 1.01 < min(log_curve["ratio"][1:])
    assert all(s > 0 for s in log_curve["compress_mb_per_s"][1:])


def test_measure_command_writes_a_loadable_table(tmp_path: Path) -> None:
    out = tmp_path / "curves.json"
    main(["measure", "--out", str(out), "--chunk-bytes", "16384"])
    table = json.loads(out.read_text())
    assert table["machine"]["cpu_count"] and table["zstd_level_by_dwcp_level"][0] == 0
    assert ZstdCurves.from_table(table).ratio.shape == (5, N_LEVELS)

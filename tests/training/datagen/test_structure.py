"""The synthetic network has learnable structure: thresholds here fail for i.i.d. noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.datagen import SyntheticTelemetry, generate
from training.telemetry_io import label_rows_with_incidents


@pytest.fixture(scope="module")
def data() -> SyntheticTelemetry:
    return generate(nodes=12, hours=48, interval_s=120, seed=7, incidents_per_node_day=1.5, missing_share=0.0)


def _link(frame: pd.DataFrame) -> pd.Series:
    return frame["node_id"].astype(str) + ">" + frame["peer_id"].astype(str)


def _lag1_median(frame: pd.DataFrame, column: str) -> float:
    return float(frame.groupby(_link(frame))[column].apply(lambda s: s.autocorr(1)).median())


def _shuffled_within_links(frame: pd.DataFrame, column: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    out[column] = out.groupby(_link(out))[column].transform(lambda s: rng.permutation(s.to_numpy()))
    return out


def test_hundreds_of_samples_per_link(data: SyntheticTelemetry) -> None:
    counts = data.metrics.groupby(_link(data.metrics)).size()
    assert counts.min() >= 500


def test_throughput_is_autocorrelated_per_link(data: SyntheticTelemetry) -> None:
    assert _lag1_median(data.metrics, "throughput_mbps") > 0.5
    # The same check on the same values in random order (i.i.d. in time) fails.
    assert _lag1_median(_shuffled_within_links(data.metrics, "throughput_mbps"), "throughput_mbps") < 0.2


def test_rtt_grows_with_utilisation(data: SyntheticTelemetry) -> None:
    m = data.metrics

    def edge_spearman(frame: pd.DataFrame) -> float:
        edge = frame[frame["link_type"] == "edge"]
        by_link = edge.groupby(_link(edge))
        return float(by_link.apply(lambda g: g["rtt_ms"].corr(g["buffer_utilization"], method="spearman")).median())

    assert edge_spearman(m) > 0.4  # bufferbloat on edge links
    assert abs(edge_spearman(_shuffled_within_links(m, "rtt_ms"))) < 0.1
    # On every link type, RTT relative to the link's median is higher when the buffer is full.
    relative = m["rtt_ms"] / m.groupby(_link(m))["rtt_ms"].transform("median")
    full, empty = relative[m["buffer_utilization"] > 0.5], relative[m["buffer_utilization"] < 0.05]
    assert full.median() > 1.2 * empty.median()


def test_link_types_differ(data: SyntheticTelemetry) -> None:
    by_type = data.metrics.groupby("link_type", observed=True)
    median = by_type[["rtt_ms", "throughput_mbps", "jitter_ms", "packet_loss_ratio"]].median()
    assert median.loc["dc", "throughput_mbps"] > 20 * median.loc["edge", "throughput_mbps"]
    assert median.loc["dc", "rtt_ms"] * 20 < median.loc["edge", "rtt_ms"]
    assert median.loc["dc", "jitter_ms"] < median.loc["edge", "jitter_ms"]
    assert median.loc["dc", "packet_loss_ratio"] < median.loc["edge", "packet_loss_ratio"]


def test_daily_cycle_repeats(data: SyntheticTelemetry) -> None:
    m = data.metrics
    m = m[m["link_type"].isin(["dc", "metro"])]  # demand-limited links; WAN is mostly transport-limited
    relative = m["throughput_mbps"] / m.groupby(_link(m))["throughput_mbps"].transform("median")
    hour, day = (m["epoch_time"] // 3_600) % 24, m["epoch_time"] // 86_400
    profile = relative.groupby([m["region"].astype(str), hour, day]).median().unstack()
    assert profile.iloc[:, 0].corr(profile.iloc[:, 1]) > 0.5  # day 1's shape predicts day 2's


def test_incident_windows_differ_from_normal(data: SyntheticTelemetry) -> None:
    m = data.metrics
    labels = label_rows_with_incidents(m, data.incidents)
    assert labels["incident"].any()
    during, normal = m[labels["incident"]], m[~labels["incident"]]
    assert during["failure_rate"].median() > 3 * normal["failure_rate"].median()
    assert during["error_budget_burn_rate"].median() > 2 * normal["error_budget_burn_rate"].median()
    assert during["p99_latency_ms"].mean() > normal["p99_latency_ms"].mean()
    crash = m[labels["incident_type"] == "node_crash"]
    if len(crash):
        assert crash["uptime_pct"].mean() < normal["uptime_pct"].mean() - 10


def test_incident_records_name_known_nodes_and_types(data: SyntheticTelemetry) -> None:
    nodes = set(data.metrics["node_id"].astype(str))
    assert {r["node_id"] for r in data.incidents} <= nodes
    assert len({r["incident_type"] for r in data.incidents}) >= 3
    assert all(r["start"] < r["end"] for r in data.incidents)


def test_incidents_on_a_quorum_path_name_its_cluster_and_move_its_commit_latency(data: SyntheticTelemetry) -> None:
    """quorum_node_ids, the consensus detector's label, is the incident's whole cluster or nobody; the commit
    latency of the nodes it names rises during it, and incidents that name nobody leave it where it was."""
    cluster = data.nodes.set_index("node_id")["cluster_id"]
    members = data.nodes.groupby("cluster_id")["node_id"].apply(sorted)
    on_path = [r for r in data.incidents if r["quorum_node_ids"]]
    assert on_path and len(on_path) < len(data.incidents)
    assert all(r["quorum_node_ids"] == members[cluster[r["node_id"]]] for r in on_path)
    m = data.metrics.drop_duplicates(["node_id", "epoch_time"])
    relative = m["consensus_latency_ms"] / m.groupby("node_id")["consensus_latency_ms"].transform("median")

    def during(records: list[dict]) -> pd.Series:
        rehomed = [
            r | {"node_id": n} for r in records for n in (r["quorum_node_ids"] or members[cluster[r["node_id"]]])
        ]
        return relative[label_rows_with_incidents(m, rehomed)["incident"].to_numpy()]

    off_path = [r for r in data.incidents if not r["quorum_node_ids"]]
    assert during(on_path).mean() > 1.5 * during(off_path).mean()
    assert during(off_path).median() < 1.1


def test_consensus_latency_follows_quorum_rtt(data: SyntheticTelemetry) -> None:
    m = data.metrics
    cluster = m["node_id"].astype(str).map(data.nodes.set_index("node_id")["cluster_id"])
    latency = m.groupby([m["epoch_time"], cluster])["consensus_latency_ms"].median().unstack()
    quorum = data.quorum_rtt_ms.loc[latency.index]
    ok = quorum.notna().to_numpy().ravel()
    pooled = pd.Series(latency.to_numpy().ravel()[ok]).corr(pd.Series(quorum.to_numpy().ravel()[ok]), "spearman")
    assert pooled > 0.7
    for c in quorum.columns:
        if quorum[c].median() > 5.0:  # a cluster whose quorum crosses metro/WAN/edge links
            assert latency[c][quorum[c].notna()].corr(quorum[c].dropna(), method="spearman") > 0.4


def test_compression_features_vary_by_link_and_time(data: SyntheticTelemetry) -> None:
    m = data.metrics
    per_link = m.groupby(_link(m))["hde_compression_ratio"].median()
    assert per_link.max() > 2 * per_link.min()
    assert (m["hde_compression_ratio"] >= 1.0).all()
    assert _lag1_median(m, "hde_delta_hit_ratio") > 0.3

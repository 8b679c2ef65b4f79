"""Chunked generation: runs the topology, incidents, link physics and consensus forward in time as Arrow tables."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from training.datagen.config import DatagenConfig
from training.datagen.consensus import (
    LeaderSchedule,
    cluster_link_matrices,
    consensus_latency,
    leader_schedules,
    mark_quorum_path,
)
from training.datagen.derived import NodeHealth, link_metrics, slo_compliance
from training.datagen.incidents import Incident, render_effects, schedule_incidents
from training.datagen.network import LinkSimulator
from training.datagen.topology import Topology, build_topology
from training.schema import COLUMNS, DWCP_MODES, LINK_TYPES, NETWORK_TIERS, NODE_ROLES, TRANSPORT_TYPES

# Columns where the simulated collector loses a share (config.missing_share) of the values.
MISSING_COLUMNS = ("jitter_ms", "p99_latency_ms", "hde_delta_hit_ratio", "slo_compliance")
# Decimals kept per column (measurement resolution); unlisted float columns keep 6.
DECIMALS = {
    "rtt_ms": 4,
    "jitter_ms": 4,
    "p50_latency_ms": 4,
    "p99_latency_ms": 4,
    "throughput_mbps": 4,
    "transfer_rate_mbps": 4,
    "amst_transfer_rate_mbps": 4,
    "uptime_pct": 4,
    "consensus_latency_ms": 3,
    "packet_loss_ratio": 9,
    "error_rate": 9,
    "failure_rate": 9,
    "error_budget_burn_rate": 5,
}


@dataclass
class ChunkTruth:
    """Ground truth of one chunk that is not in the table (used by tests and docs)."""

    times_s: np.ndarray
    quorum_rtt_ms: np.ndarray  # (steps, clusters), NaN where there was no quorum


class TelemetrySimulator:
    """Generates the dataset chunk by chunk; chunks must be consumed in order (the state carries over)."""

    def __init__(self, config: DatagenConfig) -> None:
        self.cfg = config
        topo_seq, incident_seq, init_seq = np.random.SeedSequence([config.seed, 1]).spawn(3)
        self.topo: Topology = build_topology(config, np.random.default_rng(topo_seq))
        incident_rng = np.random.default_rng(incident_seq)
        self.incidents: list[Incident] = schedule_incidents(config, self.topo, incident_rng)
        self.leaders: list[LeaderSchedule] = leader_schedules(config, self.topo, self.incidents, incident_rng)
        self.cluster_links = cluster_link_matrices(self.topo)
        init_rng = np.random.default_rng(init_seq)
        self.fsync_ms = init_rng.lognormal(np.log(1.5), 0.5, len(self.topo.clusters))
        self.links = LinkSimulator(config, self.topo, init_rng)
        self.health = NodeHealth(len(self.topo.node_ids), config.interval_s, init_rng)
        self._static = self._static_columns()
        self.last_truth: ChunkTruth | None = None

    def chunk_ranges(self) -> list[tuple[int, int]]:
        """[start, end) step ranges; the train/test boundary is always a chunk boundary."""
        per_chunk = max(1, self.cfg.chunk_rows // self.topo.n_links)
        ranges = []
        for lo, hi in ((0, self.cfg.n_train_steps), (self.cfg.n_train_steps, self.cfg.n_steps)):
            ranges += [(s, min(s + per_chunk, hi)) for s in range(lo, hi, per_chunk)]
        return ranges

    def _static_columns(self) -> dict[str, list[str]]:
        topo = self.topo
        src, dst = topo.link_src, topo.link_dst
        ids = np.array(topo.node_ids, dtype=object)
        return {
            "region": [f"{topo.node_az[i][:-1]}" for i in src],
            "az": [topo.node_az[i] for i in src],
            "datacenter_id": [topo.node_dc[i] for i in src],
            "link_type": [LINK_TYPES[t] for t in topo.link_type],
            "node_id": list(ids[src]),
            "peer_id": list(ids[dst]),
            "node_role": [NODE_ROLES[topo.node_role[i]] for i in src],
            "network_tier": [NETWORK_TIERS[t] for t in topo.tier],
            "transport_type": [TRANSPORT_TYPES[t] for t in topo.transport],
        }

    def iter_tables(self) -> Iterator[tuple[int, pa.Table]]:
        """(chunk index, table) for every chunk in time order."""
        for k, (lo, hi) in enumerate(self.chunk_ranges()):
            rng = np.random.default_rng(np.random.SeedSequence([self.cfg.seed, 2, k]))
            yield k, self._chunk(lo, hi, rng)

    def _chunk(self, lo: int, hi: int, rng: np.random.Generator) -> pa.Table:
        cfg, topo = self.cfg, self.topo
        times_s = cfg.start_epoch_s + np.arange(lo, hi, dtype=np.int64) * cfg.interval_s
        fx = render_effects(self.incidents, topo, times_s.astype(np.float64), cfg.interval_s, rng)
        phys = self.links.chunk(times_s.astype(np.float64), fx, rng)
        cols = link_metrics(self.links, phys, fx, cfg.interval_s, rng)
        node = self.health.chunk(cols["packet_loss_ratio"], topo, fx, rng)
        consensus, quorum, waited_for = consensus_latency(
            topo,
            self.leaders,
            self.cluster_links,
            self.fsync_ms,
            phys["true_rtt_ms"],
            phys["rho"],
            fx.proc_mult,
            fx.unreachable,
            times_s.astype(np.float64),
            cfg.interval_s,
            rng,
        )
        mark_quorum_path(
            self.incidents, topo, self.leaders, waited_for, fx.unreachable, times_s.astype(np.float64), cfg.interval_s
        )
        self.last_truth = ChunkTruth(times_s, quorum)
        src = topo.link_src
        failure = node["failure_rate"][:, src]
        cols["uptime_pct"] = node["uptime_pct"][:, src]
        cols["failure_rate"] = failure
        cols["error_budget_burn_rate"] = node["error_budget_burn_rate"][:, src]
        cols["error_rate"] = np.clip(cols.pop("error_rate_link") + 0.5 * fx.failure_add[:, src], 0.0, 1.0)
        cols["slo_compliance"] = slo_compliance(
            cols["p50_latency_ms"], cols["p99_latency_ms"], cols.pop("latency_slo_ms"), failure
        )
        cols["consensus_latency_ms"] = consensus[:, src]
        return self._table(times_s, cols, phys["mode"], rng)

    def _table(
        self, times_s: np.ndarray, cols: dict[str, np.ndarray], mode: np.ndarray, rng: np.random.Generator
    ) -> pa.Table:
        steps, n_links = times_s.shape[0], self.topo.n_links
        # Text columns are dictionary-encoded: per-link values indexed by link (written as plain text in CSV).
        link_idx = np.tile(np.arange(n_links, dtype=np.int32), steps)
        epoch = pa.array(np.repeat(times_s, n_links), type=pa.int64())
        arrays: dict[str, pa.Array] = {
            "timestamp": epoch.cast(pa.timestamp("s", tz="UTC")),
            "epoch_time": epoch,
            "dwcp_mode": pa.DictionaryArray.from_arrays(pa.array(mode.ravel().astype(np.int32)), pa.array(DWCP_MODES)),
        }
        for name, texts in self._static.items():
            dictionary, code = np.unique(np.array(texts, dtype=object), return_inverse=True)
            arrays[name] = pa.DictionaryArray.from_arrays(
                pa.array(code.astype(np.int32)[link_idx]), pa.array(dictionary.tolist())
            )
        for column in COLUMNS:
            if column.name in arrays:
                continue
            values = cols[column.name].ravel()
            if column.kind == "int":
                arrays[column.name] = pa.array(values.astype(np.int64))
                continue
            values = np.round(values, DECIMALS.get(column.name, 6))
            if column.name in MISSING_COLUMNS and self.cfg.missing_share > 0:
                values = np.where(rng.random(values.shape[0]) < self.cfg.missing_share, np.nan, values)
            arrays[column.name] = pa.array(values, type=pa.float64(), from_pandas=True)
        return pa.table({c.name: arrays[c.name] for c in COLUMNS})

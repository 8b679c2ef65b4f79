"""Labelled incidents: a schedule per node, and their effects on the node's (and its peers') metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from training.datagen.config import DatagenConfig
from training.datagen.topology import Topology
from training.schema import INCIDENT_SEVERITIES, INCIDENT_TYPES

TYPE_WEIGHTS = {"node_crash": 0.15, "degradation": 0.30, "memory_pressure": 0.20, "link_flap": 0.20, "partition": 0.15}
SEVERITY_WEIGHTS = (0.40, 0.35, 0.25)
# How strongly each severity shows (0-1); low-severity incidents are deliberately hard to see.
SEVERITY_SCALE = np.array([0.25, 0.6, 1.0])
# Median duration in seconds per type; actual durations are lognormal around it.
MEDIAN_DURATION_S = {
    "node_crash": 600.0,
    "degradation": 2_400.0,
    "memory_pressure": 7_200.0,
    "link_flap": 1_200.0,
    "partition": 900.0,
}


@dataclass
class Incident:
    """One scheduled incident; `links` are the link indices it disturbs on its node."""

    incident_id: str
    node: int
    type_idx: int
    severity_idx: int
    start_s: float
    end_s: float
    links: np.ndarray
    magnitude: float  # incident-specific strength factor, around 1
    # Nodes whose commit latency the incident is on the path of (its cluster's members, or none); set by
    # the simulator as it runs (training.datagen.consensus.mark_quorum_path).
    quorum_nodes: tuple[int, ...] = ()

    def record(self, node_ids: list[str]) -> dict[str, Any]:
        """The JSON record written to the incidents file."""

        def iso(s: float) -> str:
            return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        return {
            "incident_id": self.incident_id,
            "node_id": node_ids[self.node],
            "incident_type": INCIDENT_TYPES[self.type_idx],
            "severity": INCIDENT_SEVERITIES[self.severity_idx],
            "start": iso(self.start_s),
            "end": iso(self.end_s),
            "quorum_node_ids": [node_ids[k] for k in self.quorum_nodes],
        }


def schedule_incidents(config: DatagenConfig, topo: Topology, rng: np.random.Generator) -> list[Incident]:
    """Poisson arrivals per node over the whole range; incidents on one node never overlap."""
    t0 = float(config.start_epoch_s)
    t1 = t0 + config.n_steps * config.interval_s
    days = (t1 - t0) / 86_400
    weights = np.array([TYPE_WEIGHTS[t] for t in INCIDENT_TYPES])
    out: list[Incident] = []
    for node in range(len(topo.node_ids)):
        count = rng.poisson(config.incidents_per_node_day * days)
        starts = np.sort(np.round(rng.uniform(t0 + 1_800, t1, count)))
        free_from = t0
        node_links = np.flatnonzero(topo.link_src == node)
        for start in starts:
            kind = int(rng.choice(len(INCIDENT_TYPES), p=weights / weights.sum()))
            severity = int(rng.choice(3, p=SEVERITY_WEIGHTS))
            duration = MEDIAN_DURATION_S[INCIDENT_TYPES[kind]] * rng.lognormal(0.0, 0.6) * (0.6 + 0.6 * severity)
            end = min(round(start + max(duration, 30.0)), t1)
            if start < free_from or end <= start:
                continue
            n_hit = node_links.size if INCIDENT_TYPES[kind] != "link_flap" else int(rng.integers(1, 3))
            links = np.sort(rng.choice(node_links, size=min(n_hit, node_links.size), replace=False))
            out.append(Incident("", node, kind, severity, float(start), float(end), links, rng.uniform(0.6, 1.4)))
            free_from = end + 600
    out.sort(key=lambda inc: (inc.start_s, inc.node))
    for k, inc in enumerate(out):
        inc.incident_id = f"inc-{k + 1:05d}"
    return out


@dataclass
class Effects:
    """Incident effects for one chunk; link arrays are (steps, links), node arrays (steps, nodes)."""

    rtt_mult: np.ndarray
    rtt_add_ms: np.ndarray
    loss_add: np.ndarray
    tput_mult: np.ndarray
    jitter_mult: np.ndarray
    proc_mult: np.ndarray
    down_frac: np.ndarray  # node: share of the interval the node was down
    failure_add: np.ndarray  # node: extra share of failed operations
    unreachable: np.ndarray  # node: cannot take part in consensus this interval (bool)


def render_effects(
    incidents: list[Incident], topo: Topology, times_s: np.ndarray, interval_s: float, rng: np.random.Generator
) -> Effects:
    """Turn the incidents overlapping this chunk into multiplicative/additive effect arrays."""
    steps, n_links, n_nodes = times_s.shape[0], topo.n_links, len(topo.node_ids)
    fx = Effects(
        np.ones((steps, n_links)),
        np.zeros((steps, n_links)),
        np.zeros((steps, n_links)),
        np.ones((steps, n_links)),
        np.ones((steps, n_links)),
        np.ones((steps, n_links)),
        np.zeros((steps, n_nodes)),
        np.zeros((steps, n_nodes)),
        np.zeros((steps, n_nodes), bool),
    )
    chunk_end = times_s[-1] + interval_s
    for inc in incidents:
        if inc.end_s <= times_s[0] or inc.start_s >= chunk_end:
            continue
        frac = (np.minimum(inc.end_s, times_s + interval_s) - np.maximum(inc.start_s, times_s)) / interval_s
        rows = np.flatnonzero(frac > 0)
        e = np.clip(frac[rows], 0.0, 1.0)[:, None]
        s = SEVERITY_SCALE[inc.severity_idx] * inc.magnitude
        own = inc.links[None, :]
        reverse = np.flatnonzero(np.isin(topo.link_dst, inc.node) & np.isin(topo.link_src, topo.link_dst[inc.links]))
        kind = INCIDENT_TYPES[inc.type_idx]
        r, n = rows[:, None], inc.node
        if kind == "node_crash":
            d = e[:, 0]
            fx.down_frac[rows, n] = np.maximum(fx.down_frac[rows, n], d)
            fx.failure_add[rows, n] += 0.05 + 0.6 * d
            fx.unreachable[rows, n] |= d >= 0.5
            for links in (own, reverse[None, :]):
                fx.tput_mult[r, links] *= 1.0 - 0.97 * e
                fx.loss_add[r, links] += 0.9 * e
            fx.rtt_mult[r, own] *= 1.0 + 0.6 * e
            fx.proc_mult[r, own] *= 1.0 + 3.0 * e
        elif kind == "degradation":
            fx.rtt_mult[r, own] *= 1.0 + (0.1 + 1.0 * s) * e * rng.uniform(0.5, 1.5, own.shape)
            fx.rtt_add_ms[r, own] += 3.0 * s * e
            fx.loss_add[r, own] += e * s * rng.uniform(0.0005, 0.01, own.shape)
            fx.tput_mult[r, own] *= 1.0 - 0.45 * s * e
            fx.jitter_mult[r, own] *= 1.0 + 2.0 * s * e
            fx.failure_add[rows, n] += 0.004 * s * e[:, 0]
        elif kind == "memory_pressure":
            elapsed = (times_s[rows] + interval_s - inc.start_s) / (inc.end_s - inc.start_s)
            ramp = e * np.clip(elapsed, 0.05, 1.0)[:, None]  # pressure builds up over the incident
            fx.proc_mult[r, own] *= 1.0 + 4.0 * s * ramp
            fx.jitter_mult[r, own] *= 1.0 + s * ramp
            fx.rtt_add_ms[r, own] += 1.5 * s * ramp
            fx.tput_mult[r, own] *= 1.0 - 0.25 * s * ramp
            fx.failure_add[rows, n] += 0.012 * s * ramp[:, 0]
        elif kind == "link_flap":
            down = (rng.random((rows.size, own.shape[1])) < 0.5) * e
            for links in (own, reverse[None, : own.shape[1]]):
                width = links.shape[1]
                fx.loss_add[r, links] += down[:, :width] * s * rng.uniform(0.02, 0.3, (rows.size, width))
                fx.tput_mult[r, links] *= 1.0 - 0.6 * s * down[:, :width]
            fx.rtt_mult[r, own] *= 1.0 + 0.5 * s * e
            fx.failure_add[rows, n] += 0.01 * s * e[:, 0]
        else:  # partition: the node is cut off from its peers (partly, at low severity)
            cut = np.minimum(1.0, 0.3 + 0.7 * s) * e
            for links in (own, reverse[None, :]):
                fx.loss_add[r, links] += 0.95 * cut
                fx.tput_mult[r, links] *= 1.0 - 0.95 * cut
            fx.rtt_mult[r, own] *= 1.0 + 2.0 * cut
            fx.failure_add[rows, n] += 0.3 * cut[:, 0]
            fx.unreachable[rows, n] |= cut[:, 0] >= 0.5
    return fx

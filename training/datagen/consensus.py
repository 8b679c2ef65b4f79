"""Consensus commit latency: majority-quorum RTT from the leader, processing, and leader elections."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.datagen.config import DatagenConfig
from training.datagen.incidents import Incident
from training.datagen.processes import lognormal_noise
from training.datagen.topology import Topology
from training.schema import INCIDENT_TYPES

SPONTANEOUS_CHANGES_PER_DAY = 0.4  # leadership transfers for rebalancing, upgrades, lease expiry
FORCED_STALL_MEDIAN_MS = 3_000.0  # failure detection (missed heartbeats) + election
SPONTANEOUS_STALL_MEDIAN_MS = 300.0  # orderly transfer
NO_QUORUM_MEDIAN_MS = 8_000.0  # commits wait for client timeouts and retries
PENALTY_DECAY = 0.5  # the catch-up after an election halves every interval


@dataclass
class LeaderSchedule:
    """Leadership of one cluster: leader[k] leads from change_s[k]; stall_ms[k] is that election's stall."""

    change_s: np.ndarray
    leader: np.ndarray
    stall_ms: np.ndarray


def leader_schedules(
    config: DatagenConfig, topo: Topology, incidents: list[Incident], rng: np.random.Generator
) -> list[LeaderSchedule]:
    """Leader changes per cluster: spontaneous ones, and forced ones when the leader crashes or is partitioned."""
    t0 = float(config.start_epoch_s)
    t1 = t0 + config.n_steps * config.interval_s
    forcing = {INCIDENT_TYPES.index("node_crash"), INCIDENT_TYPES.index("partition")}
    out = []
    for members in topo.clusters:
        count = rng.poisson(SPONTANEOUS_CHANGES_PER_DAY * (t1 - t0) / 86_400)
        events = [(float(t), -1) for t in rng.uniform(t0, t1, count)]
        events += [
            (inc.start_s + rng.uniform(1.0, 10.0), inc.node)
            for inc in incidents
            if inc.type_idx in forcing
            and inc.node in members
            and not (INCIDENT_TYPES[inc.type_idx] == "partition" and inc.severity_idx == 0)
        ]
        changes, leaders, stalls = [t0], [int(members[0])], [0.0]
        for when, failed in sorted(events):
            if failed >= 0 and failed != leaders[-1]:
                continue  # a follower failed: the quorum absorbs it, no election
            candidates = [int(m) for m in members if m != leaders[-1]]
            leaders.append(int(rng.choice(candidates)))
            changes.append(when)
            median = FORCED_STALL_MEDIAN_MS if failed >= 0 else SPONTANEOUS_STALL_MEDIAN_MS
            stalls.append(median * float(rng.lognormal(0.0, 0.5)))
        out.append(LeaderSchedule(np.array(changes), np.array(leaders), np.array(stalls)))
    return out


def cluster_link_matrices(topo: Topology) -> list[np.ndarray]:
    """Per cluster, the link index from member i to member j (-1 on the diagonal)."""
    lookup = {(int(s), int(d)): k for k, (s, d) in enumerate(zip(topo.link_src, topo.link_dst, strict=True))}
    return [
        np.array([[lookup.get((int(a), int(b)), -1) for b in members] for a in members]) for members in topo.clusters
    ]


def consensus_latency(
    topo: Topology,
    schedules: list[LeaderSchedule],
    matrices: list[np.ndarray],
    fsync_ms: np.ndarray,
    true_rtt_ms: np.ndarray,
    util: np.ndarray,
    proc_mult: np.ndarray,
    unreachable: np.ndarray,
    times_s: np.ndarray,
    interval_s: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Commit latency per node (steps, nodes) and the quorum RTT per cluster (steps, clusters), in ms, and
    which nodes the commit waits for (steps, nodes): each cluster's leader and its (n//2) fastest followers.

    Commit latency = the (n//2)-th fastest follower RTT from the leader (majority quorum including the
    leader) + processing (fsync, slowed by leader load and memory pressure) + election stalls; each node
    sees it plus half its own RTT to the leader (the commit notification), with measurement noise. The
    followers waited for are ranked by RTT as if all were reachable: cutting one of them off moves the quorum.
    """
    steps = times_s.shape[0]
    node_latency = np.zeros((steps, len(topo.node_ids)))
    quorum_out = np.zeros((steps, len(topo.clusters)))
    waited_for = np.zeros((steps, len(topo.node_ids)), bool)
    node_proc = topo.per_node(proc_mult, np.maximum)
    node_util = topo.per_node(util) / np.bincount(topo.link_src)
    for c, (members, sched, matrix) in enumerate(zip(topo.clusters, schedules, matrices, strict=True)):
        epoch = np.searchsorted(sched.change_s, times_s + interval_s, side="right") - 1
        leader = sched.leader[epoch]
        pos = np.searchsorted(members, leader)
        links = matrix[pos]  # (steps, n) links leader -> each member
        rtt = np.where(links >= 0, true_rtt_ms[np.arange(steps)[:, None], np.maximum(links, 0)], np.inf)
        need = len(members) // 2
        fastest = np.argsort(rtt, axis=1, kind="stable")[:, :need]  # the leader's own entry is inf, last
        waited_for[np.arange(steps)[:, None], members[fastest]] = True
        waited_for[np.arange(steps), leader] = True
        rtt = np.where(unreachable[:, members], np.inf, rtt)
        quorum = np.sort(rtt, axis=1)[:, need - 1]
        no_quorum = ~np.isfinite(quorum) | unreachable[np.arange(steps), leader]
        quorum_out[:, c] = np.where(no_quorum, np.nan, quorum)
        processing = fsync_ms[c] * lognormal_noise(rng, 0.3, (steps,)) * node_proc[np.arange(steps), leader]
        processing *= 1.0 + 1.5 * node_util[np.arange(steps), leader] ** 2
        stall = np.zeros(steps)
        for k in range(1, sched.change_s.shape[0]):
            since = np.floor((times_s - sched.change_s[k]) / interval_s) + 1  # 0 in the interval it happens
            hit = (since >= 0) & (since < 5)
            first = sched.stall_ms[k] ** 2 / (2_000.0 * interval_s) + 0.3 * sched.stall_ms[k]
            stall[hit] += first * PENALTY_DECAY ** since[hit]
        total = np.where(
            no_quorum,
            NO_QUORUM_MEDIAN_MS * lognormal_noise(rng, 0.4, (steps,)),
            np.where(np.isfinite(quorum), quorum, 0.0) + processing + stall,
        )
        to_leader = np.where(links >= 0, true_rtt_ms[np.arange(steps)[:, None], np.maximum(links, 0)], 0.0)
        seen = total[:, None] + 0.5 * to_leader
        node_latency[:, members] = seen * lognormal_noise(rng, 0.05, seen.shape)
    return node_latency, quorum_out, waited_for


def leads_during(schedule: LeaderSchedule, node: int, start_s: float, end_s: float) -> bool:
    """Whether `node` leads its cluster at any moment of [start_s, end_s)."""
    first = np.searchsorted(schedule.change_s, start_s, side="right") - 1
    last = np.searchsorted(schedule.change_s, end_s, side="left") - 1
    return bool(np.any(schedule.leader[max(first, 0) : last + 1] == node))


def mark_quorum_path(
    incidents: list[Incident],
    topo: Topology,
    schedules: list[LeaderSchedule],
    waited_for: np.ndarray,
    unreachable: np.ndarray,
    times_s: np.ndarray,
    interval_s: float,
) -> None:
    """Set `quorum_nodes` (the cluster's members) on each incident of this chunk that is on its cluster's
    commit path: one on the leader that touches its links to members or its processing (any type but a
    link flap of links to non-members), or one that cuts off a follower the quorum waits for.

    The label of the consensus detector: an incident off the path (a follower's memory pressure, a flap of
    a follower's links) cannot move any member's commit latency, so it labels none of their windows.
    """
    chunk_end = times_s[-1] + interval_s
    for inc in incidents:
        if len(inc.quorum_nodes) or inc.end_s <= times_s[0] or inc.start_s >= chunk_end:
            continue
        cluster = int(topo.node_cluster[inc.node])
        members = topo.clusters[cluster]
        touches_members = INCIDENT_TYPES[inc.type_idx] != "link_flap" or bool(
            np.isin(topo.link_dst[inc.links], members).any()
        )
        on_path = touches_members and leads_during(schedules[cluster], inc.node, inc.start_s, inc.end_s)
        if not on_path:
            active = (times_s < inc.end_s) & (times_s + interval_s > inc.start_s)
            on_path = bool(np.any(active & unreachable[:, inc.node] & waited_for[:, inc.node]))
        if on_path:
            inc.quorum_nodes = tuple(int(m) for m in members)

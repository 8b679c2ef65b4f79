"""Synthetic topology: regions, datacenters, nodes, consensus clusters, links and per-link parameters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.datagen.config import DatagenConfig
from training.schema import DWCP_MODES, LINK_TYPES, NETWORK_TIERS, NODE_ROLES, TRANSPORT_TYPES

# Region name, UTC offset in hours (drives the local daily cycle), index into REGION_RTT_MS.
REGIONS: tuple[tuple[str, int], ...] = (("us-east-1", -5), ("us-west-2", -8), ("eu-west-1", 0), ("ap-southeast-1", 8))
# Typical inter-region propagation RTT in ms (great-circle fibre path with routing stretch).
REGION_RTT_MS = np.array([[0, 65, 75, 215], [65, 0, 135, 165], [75, 135, 0, 160], [215, 165, 160, 0]], float)
AZS_PER_REGION = 2
DCS_PER_AZ = 2

DC, METRO, WAN, EDGE = 0, 1, 2, 3  # indices into schema.LINK_TYPES

# Per link type: capacity choices (Mbps), mean offered utilisation range, buffer size (packets),
# burst size (packets, the batch size of the M^X/M/1 queue), random-loss floor, RTT measurement
# noise (lognormal sigma), OU sigma of the load, load time constant (s), base jitter (ms).
CAPACITY_MBPS = (
    (10_000, 25_000, 40_000, 100_000),
    (1_000, 10_000, 10_000, 40_000),
    (1_000, 2_500, 10_000, 10_000),
    (20, 50, 100, 300, 1_000),
)
UTIL_RANGE = ((0.10, 0.45), (0.20, 0.55), (0.30, 0.65), (0.15, 0.50))
BUFFER_PKTS = (1_000, 4_000, 10_000, 1_000)
BURST_PKTS = (40.0, 60.0, 100.0, 25.0)
LOSS_FLOOR = (1e-7, 1e-6, 1e-5, 3e-4)
RTT_NOISE_SIGMA = (0.08, 0.04, 0.02, 0.10)
LOAD_SIGMA = (0.30, 0.22, 0.18, 0.40)
LOAD_TAU_S = (600.0, 1_200.0, 1_800.0, 900.0)
BASE_JITTER_MS = (0.01, 0.05, 0.4, 3.0)


@dataclass
class Topology:
    """Node and link arrays; link i goes from node link_src[i] to node link_dst[i]."""

    node_ids: list[str]
    node_region: np.ndarray  # region index per node
    node_az: list[str]
    node_dc: list[str]
    node_role: np.ndarray  # index into NODE_ROLES
    node_cluster: np.ndarray  # consensus cluster per node
    clusters: list[np.ndarray]  # member node indices per cluster; member 0 is the first leader
    link_src: np.ndarray
    link_dst: np.ndarray
    link_type: np.ndarray  # index into LINK_TYPES
    tier: np.ndarray  # index into NETWORK_TIERS
    transport: np.ndarray  # index into TRANSPORT_TYPES
    mode_bias: np.ndarray  # index into DWCP_MODES most used on the link
    capacity_mbps: np.ndarray
    prop_rtt_ms: np.ndarray
    buffer_pkts: np.ndarray
    burst_pkts: np.ndarray
    util_mean: np.ndarray
    dwcp_share: np.ndarray  # share of the offered load that is DWCP traffic (the rest is cross traffic)
    loss_floor: np.ndarray
    reverse_ratio: np.ndarray  # bytes_rx / bytes_tx
    compressibility: np.ndarray  # best HDE ratio of the link's payload, >= 1
    base_streams: np.ndarray

    @property
    def n_links(self) -> int:
        """Number of directed links."""
        return int(self.link_src.shape[0])

    def per_node(self, values: np.ndarray, ufunc: np.ufunc = np.add) -> np.ndarray:
        """Reduce (steps, links) to (steps, nodes) over each node's outgoing links (links are sorted by node)."""
        starts = np.searchsorted(self.link_src, np.arange(len(self.node_ids)))
        return np.asarray(ufunc.reduceat(values, starts, axis=1))


def _cluster_sizes(nodes: int) -> list[int]:
    sizes: list[int] = []
    left = nodes
    while left:
        size = 5 if left >= 8 or left == 5 else (4 if left == 4 else 3)
        if left - size in (1, 2):
            size = 3 if left - 3 not in (1, 2) else left
        sizes.append(size)
        left -= size
    return sizes


def _link_type(a: int, b: int, region: np.ndarray, dc: list[str], role: np.ndarray) -> int:
    if role[a] == NODE_ROLES.index("edge") or role[b] == NODE_ROLES.index("edge"):
        return EDGE
    if dc[a] == dc[b]:
        return DC
    return METRO if region[a] == region[b] else WAN


def build_topology(config: DatagenConfig, rng: np.random.Generator) -> Topology:
    """Place nodes in regions and datacenters, group them into consensus clusters and draw link parameters."""
    n = config.nodes
    region = np.zeros(n, dtype=np.int64)
    az: list[str] = [""] * n
    dc: list[str] = [""] * n
    role = np.full(n, NODE_ROLES.index("worker"), dtype=np.int64)
    cluster = np.zeros(n, dtype=np.int64)
    clusters: list[np.ndarray] = []
    start = 0
    for c, size in enumerate(_cluster_sizes(n)):
        members = np.arange(start, start + size)
        home = int(rng.integers(len(REGIONS)))
        home_dc = (int(rng.integers(AZS_PER_REGION)), int(rng.integers(DCS_PER_AZ)))
        for k, node in enumerate(members):
            spread = rng.random()
            r, (a, d) = home, home_dc
            if k and spread < 0.25:  # another datacenter of the same region
                a, d = int(rng.integers(AZS_PER_REGION)), int(rng.integers(DCS_PER_AZ))
            elif k and spread < 0.40:  # another region: a WAN member
                r = int(rng.integers(len(REGIONS)))
            region[node] = r
            short = REGIONS[r][0]
            az[node] = f"{short}{chr(ord('a') + a)}"
            dc[node] = f"{short}-az{a + 1}-dc{d + 1}"
            if k and rng.random() < 0.2:
                role[node] = NODE_ROLES.index("edge")
        role[members[0]] = NODE_ROLES.index("coordinator")
        cluster[members] = c
        clusters.append(members)
        start += size
    src: list[int] = []
    dst: list[int] = []
    for members in clusters:
        for member in members:
            a = int(member)
            others = [int(b) for b in members if b != a]
            outside = np.setdiff1d(np.arange(n), members)
            extra = rng.choice(outside, size=min(config.extra_peers, outside.size), replace=False)
            for b in others + [int(x) for x in extra]:
                src.append(int(a))
                dst.append(b)
    link_src, link_dst = np.array(src), np.array(dst)
    assert np.all(np.diff(link_src) >= 0) and np.unique(link_src).size == n  # per_node relies on it
    ltype = np.array([_link_type(a, b, region, dc, role) for a, b in zip(src, dst, strict=True)])
    return _link_parameters(
        config,
        rng,
        node_ids=[f"node-{i:04d}" for i in range(n)],
        region=region,
        az=az,
        dc=dc,
        role=role,
        cluster=cluster,
        clusters=clusters,
        src=link_src,
        dst=link_dst,
        ltype=ltype,
    )


def _pick(rng: np.random.Generator, table: tuple[float, ...], ltype: np.ndarray) -> np.ndarray:
    return np.array([table[t] for t in ltype], dtype=np.float64)


def _link_parameters(
    config: DatagenConfig,
    rng: np.random.Generator,
    *,
    node_ids: list[str],
    region: np.ndarray,
    az: list[str],
    dc: list[str],
    role: np.ndarray,
    cluster: np.ndarray,
    clusters: list[np.ndarray],
    src: np.ndarray,
    dst: np.ndarray,
    ltype: np.ndarray,
) -> Topology:
    n_links = src.shape[0]
    capacity = np.array([rng.choice(CAPACITY_MBPS[t]) for t in ltype], dtype=np.float64)
    # Propagation RTT: inside a DC tens to hundreds of microseconds; metro 0.5-4 ms; WAN from the region
    # matrix with a route stretch; edge is a last-mile hop (5-40 ms) plus any inter-region distance.
    inter = REGION_RTT_MS[region[src], region[dst]]
    prop = np.select(
        [ltype == DC, ltype == METRO, ltype == WAN],
        [
            rng.uniform(0.05, 0.4, n_links),
            rng.uniform(0.5, 4.0, n_links),
            np.maximum(inter, 2.0) * rng.uniform(1.0, 1.3, n_links),
        ],
        default=rng.uniform(5.0, 40.0, n_links) + inter * rng.uniform(1.0, 1.3, n_links),
    )
    low = _pick(rng, tuple(r[0] for r in UTIL_RANGE), ltype)
    high = _pick(rng, tuple(r[1] for r in UTIL_RANGE), ltype)
    tier = np.where(
        ltype == EDGE, rng.choice(3, n_links, p=[0.1, 0.3, 0.6]), rng.choice(3, n_links, p=[0.5, 0.35, 0.15])
    )
    transport = np.where(
        ltype == WAN, rng.choice(3, n_links, p=[0.4, 0.2, 0.4]), rng.choice(3, n_links, p=[0.6, 0.15, 0.25])
    )
    mode_bias = np.where(ltype == DC, 0, np.where(ltype == EDGE, rng.choice([0, 2], n_links), 1))
    streams = np.where(
        ltype == WAN,
        rng.integers(4, 17, n_links),
        np.where(ltype == EDGE, rng.integers(1, 4, n_links), rng.integers(1, 5, n_links)),
    )
    return Topology(
        node_ids=node_ids,
        node_region=region,
        node_az=az,
        node_dc=dc,
        node_role=role,
        node_cluster=cluster,
        clusters=clusters,
        link_src=src,
        link_dst=dst,
        link_type=ltype,
        tier=tier,
        transport=transport,
        mode_bias=mode_bias,
        capacity_mbps=capacity,
        prop_rtt_ms=prop,
        buffer_pkts=_pick(rng, BUFFER_PKTS, ltype) * rng.uniform(0.5, 2.0, n_links),
        burst_pkts=_pick(rng, BURST_PKTS, ltype) * rng.uniform(0.6, 1.6, n_links),
        util_mean=rng.uniform(low, high),
        dwcp_share=np.asarray(rng.uniform(0.3, 0.9, n_links)),
        loss_floor=_pick(rng, LOSS_FLOOR, ltype) * rng.lognormal(0.0, 0.8, n_links),
        reverse_ratio=np.asarray(rng.uniform(0.02, 0.6, n_links)),
        compressibility=np.asarray(1.0 + rng.lognormal(np.log(1.5), 0.6, n_links)),
        base_streams=streams.astype(np.float64),
    )


__all__ = ["DWCP_MODES", "LINK_TYPES", "NETWORK_TIERS", "TRANSPORT_TYPES", "Topology", "build_topology"]

"""The telemetry schema: every column, its unit, type, range and categories, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["timestamp", "int", "float", "category", "string", "names"]  # names: a list of non-empty texts


@dataclass(frozen=True)
class Column:
    """One column of the link-sample table."""

    name: str
    kind: Kind
    group: str
    unit: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    # True when the minimum itself is not allowed (rtt_ms must be > 0).
    minimum_exclusive: bool = False
    categories: tuple[str, ...] = ()
    required: bool = True
    # A 0-1 ratio that exporters sometimes write as a 0-100 percentage.
    is_ratio: bool = False

    def expected(self) -> str:
        """Human-readable statement of what a valid value looks like."""
        if self.kind == "category":
            return "one of " + ", ".join(self.categories)
        if self.kind == "timestamp":
            return "ISO 8601 UTC timestamp, e.g. 2026-01-05T00:00:00Z"
        if self.kind == "string":
            return "non-empty text"
        kind = "integer" if self.kind == "int" else "number"
        low = "" if self.minimum is None else f"{'>' if self.minimum_exclusive else '>='} {self.minimum:g}"
        high = "" if self.maximum is None else f"<= {self.maximum:g}"
        bounds = " and ".join(b for b in (low, high) if b)
        return f"{kind} {bounds} ({self.unit})".replace("  ", " ")


@dataclass(frozen=True)
class Alias:
    """A column name used by existing DWCP tooling that maps to a canonical column."""

    name: str
    canonical: str
    note: str


LINK_TYPES = ("dc", "metro", "wan", "edge")
NODE_ROLES = ("coordinator", "worker", "edge")
DWCP_MODES = ("standard", "optimized", "resilient")
NETWORK_TIERS = ("tier1", "tier2", "tier3")
TRANSPORT_TYPES = ("tcp", "udp", "quic")
INCIDENT_TYPES = ("node_crash", "degradation", "memory_pressure", "link_flap", "partition")
INCIDENT_SEVERITIES = ("low", "medium", "high")

# Enum numbers shared with the proto and docs/artifacts.md.
LINK_TYPE_CODES = {"dc": 1, "metro": 2, "wan": 3, "edge": 4}
NETWORK_TIER_CODES = {"tier1": 1, "tier2": 2, "tier3": 3}

# A column may miss at most this share of its values.
MAX_MISSING_SHARE = 0.05

_C = Column
COLUMNS: tuple[Column, ...] = (
    _C("timestamp", "timestamp", "time", "UTC", "Start of the sample interval"),
    # A number, not an integer: fractional stamps are accepted and snapped to the sample grid (training.sampling).
    _C("epoch_time", "float", "time", "s", "Start of the sample interval, Unix seconds", minimum=0),
    _C("region", "string", "topology", "name", "Region of the node"),
    _C("az", "string", "topology", "name", "Availability zone of the node"),
    _C("datacenter_id", "string", "topology", "name", "Datacenter of the node"),
    _C("link_type", "category", "topology", "enum", "Kind of path the link crosses", categories=LINK_TYPES),
    _C("node_id", "string", "identity", "name", "Node that measured the link"),
    _C("peer_id", "string", "identity", "name", "Node at the other end of the link"),
    _C("node_role", "category", "identity", "enum", "Role of node_id", categories=NODE_ROLES),
    _C("rtt_ms", "float", "latency", "ms", "Mean round-trip time", 0, 10_000, minimum_exclusive=True),
    _C("jitter_ms", "float", "latency", "ms", "Mean absolute difference of consecutive RTTs", 0, 10_000),
    _C("p50_latency_ms", "float", "latency", "ms", "Median DWCP request latency", 0, 600_000),
    _C("p99_latency_ms", "float", "latency", "ms", "99th percentile DWCP request latency", 0, 600_000),
    _C("throughput_mbps", "float", "throughput", "Mbps", "Achieved DWCP throughput on the wire", 0, 400_000),
    _C("bytes_tx", "int", "throughput", "bytes", "Bytes sent node -> peer in the interval", 0),
    _C("bytes_rx", "int", "throughput", "bytes", "Bytes received peer -> node in the interval", 0),
    _C(
        "transfer_rate_mbps",
        "float",
        "throughput",
        "Mbps",
        "Application payload rate (goodput times compression ratio)",
        0,
        4_000_000,
    ),
    _C("packet_loss_ratio", "float", "reliability", "ratio 0-1", "Share of packets lost", 0, 1, is_ratio=True),
    _C("retransmits", "int", "reliability", "segments", "Segments retransmitted in the interval", 0),
    _C(
        "error_rate",
        "float",
        "reliability",
        "ratio 0-1",
        "Share of DWCP messages on the link that errored",
        0,
        1,
        is_ratio=True,
    ),
    _C("uptime_pct", "float", "reliability", "pct 0-100", "Share of the interval node_id was up", 0, 100),
    _C("congestion_window", "int", "congestion", "segments", "Sender congestion window per stream", 1, 10_000_000),
    _C("queue_depth", "int", "congestion", "packets", "Bottleneck queue occupancy", 0),
    _C(
        "buffer_utilization",
        "float",
        "congestion",
        "ratio 0-1",
        "queue_depth / bottleneck buffer size",
        0,
        1,
        is_ratio=True,
    ),
    _C("dwcp_mode", "category", "protocol", "enum", "DWCP operating mode", categories=DWCP_MODES),
    _C("network_tier", "category", "protocol", "enum", "Service tier of the link", categories=NETWORK_TIERS),
    _C("transport_type", "category", "protocol", "enum", "Transport protocol", categories=TRANSPORT_TYPES),
    _C(
        "hde_compression_ratio",
        "float",
        "compression",
        "ratio >= 1",
        "HDE uncompressed / compressed bytes",
        1,
        1_000,
        required=False,
    ),
    _C(
        "hde_delta_hit_ratio",
        "float",
        "compression",
        "ratio 0-1",
        "Share of chunks served by delta encoding",
        0,
        1,
        required=False,
        is_ratio=True,
    ),
    _C("compression_level", "int", "compression", "level 0-9", "Compression level in use", 0, 9, required=False),
    _C("amst_streams", "int", "multi-streaming", "streams", "Parallel AMST streams", 1, 1_024, required=False),
    _C(
        "amst_transfer_rate_mbps",
        "float",
        "multi-streaming",
        "Mbps",
        "Aggregate AMST rate over all streams",
        0,
        400_000,
        required=False,
    ),
    _C(
        "stream_utilization",
        "float",
        "multi-streaming",
        "ratio 0-1",
        "Used share of the streams' capacity",
        0,
        1,
        required=False,
        is_ratio=True,
    ),
    _C(
        "error_budget_burn_rate",
        "float",
        "error budget",
        "x budget",
        "Error-budget burn rate over the last hour (1 = burning exactly the budget)",
        0,
        1_000_000,
    ),
    _C(
        "slo_compliance",
        "float",
        "error budget",
        "ratio 0-1",
        "Share of requests meeting the latency SLO",
        0,
        1,
        is_ratio=True,
    ),
    _C(
        "failure_rate",
        "float",
        "error budget",
        "ratio 0-1",
        "Share of DWCP operations of node_id that failed",
        0,
        1,
        is_ratio=True,
    ),
    _C(
        "consensus_latency_ms",
        "float",
        "consensus",
        "ms",
        "Mean commit latency of node_id's consensus cluster",
        0,
        600_000,
    ),
)

COLUMNS_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}

ALIASES: dict[str, Alias] = {
    a.name: a
    for a in (
        Alias("packet_loss", "packet_loss_ratio", "read as packet_loss_ratio (ratio 0-1)"),
        Alias("hde_delta_hit_rate", "hde_delta_hit_ratio", "read as hde_delta_hit_ratio (ratio 0-1)"),
        Alias("amst_transfer_rate", "amst_transfer_rate_mbps", "read as amst_transfer_rate_mbps (assumed Mbps)"),
    )
}


@dataclass(frozen=True)
class IncidentField:
    """One field of an incident record (incidents are JSON, not table columns)."""

    name: str
    kind: Kind
    description: str
    categories: tuple[str, ...] = ()
    required: bool = True


INCIDENT_FIELDS: tuple[IncidentField, ...] = (
    IncidentField("incident_id", "string", "Identifier of the incident", required=False),
    IncidentField("node_id", "string", "Node the incident happened on (matches node_id in the metrics)"),
    IncidentField("incident_type", "category", "Kind of incident", categories=INCIDENT_TYPES),
    IncidentField("severity", "category", "How strongly the incident shows", categories=INCIDENT_SEVERITIES),
    IncidentField("start", "timestamp", "First moment of the incident, ISO 8601 UTC"),
    IncidentField("end", "timestamp", "End of the incident (exclusive), ISO 8601 UTC, after start"),
    IncidentField(
        "quorum_node_ids",
        "names",
        "Nodes whose consensus commit latency the incident can move (the members of the cluster whose leader "
        "it hits, or whose quorum loses a follower it waits for); [] for none. Absent: node_id alone",
        required=False,
    ),
)
INCIDENT_FIELDS_BY_NAME: dict[str, IncidentField] = {f.name: f for f in INCIDENT_FIELDS}

"""The hard limits the proto states: no manifest may accept a value outside them (docs/artifacts.md).

A manifest's `min`/`max` narrow a feature's range for one model; they can never widen it past what the
proto's comments promise callers (proto/dwcp/inference/v1/inference.proto). Where the proto states only
a floor (">= 0"), the cap here is the widest any model of this service has been trained on, so a manifest
edited to 1e30 is still refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# feature (proto field) name -> (lowest, highest) value a manifest range may include, inclusive.
FEATURE_LIMITS: dict[str, tuple[float, float]] = {
    "rtt_ms": (0.0, 10_000.0),  # proto: 0 < rtt_ms <= 10000 (a manifest's min says how far above 0)
    "jitter_ms": (0.0, 10_000.0),
    "throughput_mbps": (0.0, 400_000.0),
    "packet_loss_ratio": (0.0, 1.0),
    "link_type": (1.0, 4.0),  # enum numbers; UNSPECIFIED (0) is refused
    "network_tier": (1.0, 3.0),
    "congestion_window_segments": (1.0, 10_000_000.0),
    "hde_compression_ratio": (1.0, 1_000.0),  # proto: >= 1
    "hde_delta_hit_ratio": (0.0, 1.0),
    "amst_transfer_rate_mbps": (0.0, 400_000.0),
    "uptime_pct": (0.0, 100.0),
    "failure_ratio": (0.0, 1.0),
    "retransmits_count": (0.0, 1e12),  # proto: >= 0
    "error_budget_burn_rate": (0.0, 1e6),  # proto: >= 0
    "consensus_latencies_ms": (0.0, 600_000.0),
}

MAX_NAME_BYTES = 256  # identifiers a caller sends (link_id, node_id, cluster_id, model_name)


def limit_problems(features: Iterable[Any], where: str) -> list[str]:
    """Every feature of a manifest input (JSON objects) whose name or range breaks FEATURE_LIMITS."""
    problems = []
    for i, feature in enumerate(features):
        if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
            continue  # the schema check reports it
        name, low, high = feature["name"], feature.get("min"), feature.get("max")
        limits = FEATURE_LIMITS.get(name)
        if limits is None:
            problems.append(f"{where}.features[{i}].name: {name!r} is not a request field with a stated range")
            continue
        for key, value in (("min", low), ("max", high)):
            if isinstance(value, int | float) and not isinstance(value, bool) and not limits[0] <= value <= limits[1]:
                problems.append(
                    f"{where}.features[{i}].{key}: {value} is outside the proto's range {limits[0]:g}-{limits[1]:g}"
                    f" for {name}"
                )
    return problems

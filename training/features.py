"""Model features: which telemetry column feeds which model input, in what unit, within what range.

Feature names are the proto field names (docs/artifacts.md); `column` is the telemetry column. The
ranges are the schema's, so validation at training and at serving agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.schema import COLUMNS_BY_NAME, LINK_TYPE_CODES, NETWORK_TIER_CODES

CATEGORY_CODES: dict[str, dict[str, int]] = {"link_type": LINK_TYPE_CODES, "network_tier": NETWORK_TIER_CODES}
RTT_FLOOR_MS = 0.001  # rtt_ms must be > 0; the manifest range is inclusive, so its minimum is this floor


@dataclass(frozen=True)
class Feature:
    """One model input feature."""

    name: str  # proto field name
    column: str  # telemetry column

    @property
    def categories(self) -> dict[str, int] | None:
        """Enum name -> code for categorical features, else None."""
        return CATEGORY_CODES.get(self.column)

    def manifest_entry(self) -> dict[str, object]:
        """The manifest's description of this feature: unit, inclusive range, meaning."""
        col = COLUMNS_BY_NAME[self.column]
        entry: dict[str, object] = {"name": self.name, "column": self.column, "description": col.description}
        if self.categories is not None:
            codes = self.categories
            entry.update(unit="enum", min=min(codes.values()), max=max(codes.values()), categories=codes)
        else:
            low = RTT_FLOOR_MS if col.minimum_exclusive else col.minimum
            entry.update(unit=col.unit, min=float(low if low is not None else 0.0))
            entry["max"] = float(col.maximum) if col.maximum is not None else 1e12
        return entry

    def values(self, frame: pd.DataFrame) -> np.ndarray:
        """The column as float32 model input (categories as their enum codes; missing stays NaN)."""
        series = frame[self.column]
        if self.categories is not None:
            return series.astype(str).map(self.categories).to_numpy(dtype=np.float32)
        return series.to_numpy(dtype=np.float32, na_value=np.nan)


def _f(name: str, column: str | None = None) -> Feature:
    return Feature(name, column or name)


BANDWIDTH_FEATURES = (
    _f("rtt_ms"),
    _f("jitter_ms"),
    _f("throughput_mbps"),
    _f("packet_loss_ratio"),
    _f("link_type"),
    _f("network_tier"),
    _f("congestion_window_segments", "congestion_window"),
)
COMPRESSION_FEATURES = (
    _f("throughput_mbps"),
    _f("rtt_ms"),
    _f("link_type"),
    _f("hde_compression_ratio"),
    _f("hde_delta_hit_ratio"),
    _f("amst_transfer_rate_mbps"),
)
RELIABILITY_FEATURES = (
    _f("uptime_pct"),
    _f("failure_ratio", "failure_rate"),
    _f("packet_loss_ratio"),
    _f("retransmits_count", "retransmits"),
    _f("error_budget_burn_rate"),
    _f("rtt_ms"),
)
CONSENSUS_FEATURE = _f("consensus_latencies_ms", "consensus_latency_ms")


def feature_matrix(frame: pd.DataFrame, features: tuple[Feature, ...]) -> np.ndarray:
    """[rows, features] float32 in feature order."""
    return (
        np.stack([f.values(frame) for f in features], axis=1)
        if len(frame)
        else np.zeros((0, len(features)), np.float32)
    )


def frame_with_features(frame: pd.DataFrame, features: tuple[Feature, ...]) -> pd.DataFrame:
    """A copy of the identifying columns plus one float32 column per feature, named by feature name."""
    out = frame[["node_id", "peer_id", "epoch_time"]].copy()
    for feature in features:
        out[feature.name] = feature.values(frame)
    return out

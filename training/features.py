"""Model features: which telemetry column feeds which model input, in what unit, within what range.

Feature names are the proto field names (docs/artifacts.md); `column` is the telemetry column. The
ranges are the schema's, so validation at training and at serving agree.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
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


@dataclass(frozen=True)
class ModelData:
    """What one model reads from telemetry: its features (core and optional), series keys and labels.

    Core features are those the model cannot work without (docs/telemetry-schema.md says why); every
    other feature is optional and used when its column is present, or when chosen with --features.
    """

    features: tuple[Feature, ...]  # every feature the model can use, in input order
    core: tuple[str, ...]  # feature names that may not be left out
    identity: tuple[str, ...]  # identity columns the model's series are keyed by
    incidents: str  # "required" (labels choose the threshold), "optional" (labels for evaluation), "unused"
    window_steps: int = 0  # samples per window; 0 for a model of single rows
    window_group: tuple[str, ...] = ()  # series a window stays inside
    window_with_target: bool = True  # the window is followed by a target sample

    @property
    def window_span(self) -> int:
        """Consecutive samples one window needs (its steps plus the target), 0 for a row model."""
        return self.window_steps + (1 if self.window_with_target and self.window_steps else 0)

    def feature(self, name: str) -> Feature | None:
        """The feature called `name` (its proto name or its telemetry column), or None."""
        return next((f for f in self.features if name in (f.name, f.column)), None)


MODEL_DATA: dict[str, ModelData] = {
    "bandwidth_predictor": ModelData(
        BANDWIDTH_FEATURES, ("throughput_mbps",), ("node_id", "peer_id"), "unused", 10, ("node_id", "peer_id")
    ),
    "compression_selector": ModelData(
        COMPRESSION_FEATURES,
        ("throughput_mbps", "hde_compression_ratio", "hde_delta_hit_ratio"),
        ("node_id", "peer_id"),
        "unused",
    ),
    "reliability_detector": ModelData(RELIABILITY_FEATURES, (), ("node_id", "peer_id"), "required"),
    "consensus_latency": ModelData(
        (CONSENSUS_FEATURE,), ("consensus_latencies_ms",), ("node_id",), "optional", 20, ("node_id",), False
    ),
}


class FeatureSelectionError(ValueError):
    """A feature choice names an unknown model or feature, or leaves out a core feature."""


def parse_feature_choice(items: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """`["bandwidth_predictor=throughput_mbps,rtt_ms", ...]` -> {model: feature names}; checks names."""
    choice: dict[str, tuple[str, ...]] = {}
    for item in items:
        model, sep, names = item.partition("=")
        model = model.strip()
        if not sep or not names.strip():
            raise FeatureSelectionError(f"--features {item!r}: expected MODEL=FEATURE[,FEATURE...]")
        if model not in MODEL_DATA:
            raise FeatureSelectionError(f"--features: unknown model {model!r}; expected one of {', '.join(MODEL_DATA)}")
        if model in choice:
            raise FeatureSelectionError(f"--features: {model} given twice")
        spec = MODEL_DATA[model]
        chosen = []
        for name in (n.strip() for n in names.split(",") if n.strip()):
            feature = spec.feature(name)
            if feature is None:
                raise FeatureSelectionError(
                    f"--features: {model} has no feature {name!r}; its features are "
                    + ", ".join(f.name for f in spec.features)
                )
            chosen.append(feature.name)
        left_out = [c for c in spec.core if c not in chosen]
        if left_out:
            raise FeatureSelectionError(
                f"--features: {model} cannot leave out its core feature(s) {', '.join(left_out)}"
            )
        choice[model] = tuple(chosen)
    return choice


def select_features(model: str, columns: Collection[str], chosen: Sequence[str] | None = None) -> tuple[Feature, ...]:
    """The features `model` trains on, in input order: `chosen` (names), or every feature whose column is present.

    Raises FeatureSelectionError naming the column when a core or chosen feature's column is missing.
    """
    spec = MODEL_DATA[model]
    if chosen is None:
        missing = [f.column for f in spec.features if f.name in spec.core and f.column not in columns]
        if missing:
            raise FeatureSelectionError(f"{model}: core column(s) {', '.join(missing)} missing")
        picked = tuple(f for f in spec.features if f.column in columns)
    else:
        unknown = [n for n in chosen if spec.feature(n) is None]
        if unknown:
            raise FeatureSelectionError(
                f"{model} has no feature {', '.join(unknown)}; its features are "
                + ", ".join(f.name for f in spec.features)
            )
        wanted = {f.name for f in spec.features if f.name in chosen or f.column in chosen}
        left_out = [c for c in spec.core if c not in wanted]
        if left_out:
            raise FeatureSelectionError(f"{model} cannot leave out its core feature(s) {', '.join(left_out)}")
        picked = tuple(f for f in spec.features if f.name in wanted)
        missing = [f.column for f in picked if f.column not in columns]
        if missing:
            raise FeatureSelectionError(f"{model}: chosen feature column(s) {', '.join(missing)} missing")
    if not picked:
        raise FeatureSelectionError(
            f"{model}: none of its feature columns is present ({', '.join(f.column for f in spec.features)})"
        )
    return picked


def features_from_manifest(model: str, manifest: Mapping[str, object]) -> tuple[Feature, ...]:
    """The features an exported version was trained on (its manifest's `inputs[0].features`), in its order."""
    spec = MODEL_DATA[model]
    inputs = manifest.get("inputs")
    entries = inputs[0].get("features") if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict) else None
    if not isinstance(entries, list):
        return spec.features
    found = [spec.feature(str(e.get("name"))) for e in entries if isinstance(e, dict)]
    if not found or any(f is None for f in found):
        raise FeatureSelectionError(f"{model}: the manifest names a feature this model does not have")
    return tuple(f for f in found if f is not None)


def feature_indices(features: Sequence[Feature], names: Collection[str]) -> tuple[int, ...]:
    """Positions in `features` of the ones named in `names` (those chosen; absent ones are skipped)."""
    return tuple(j for j, f in enumerate(features) if f.name in names)


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

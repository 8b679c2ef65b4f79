"""Configuration of the synthetic telemetry generator."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from training.schema import MAX_MISSING_SHARE


@dataclass(frozen=True)
class DatagenConfig:
    """Everything that defines a synthetic dataset; the same config always gives the same bytes."""

    nodes: int = 24  # DWCP nodes (>= 3); each links to its consensus-cluster mates plus extra_peers others
    hours: float = 168.0  # length of the whole time range: 7 days covers one weekly cycle
    interval_s: int = 120  # sample interval; one row per link per interval
    seed: int = 0  # seed of every random draw
    start_utc: str = "2026-01-05T00:00:00Z"  # first sample; a Monday 00:00 UTC
    test_fraction: float = 0.2  # the last share of the time range is the held-out test range
    extra_peers: int = 1  # links per node to nodes outside its consensus cluster
    incidents_per_node_day: float = 0.35  # mean rate of labelled incidents
    missing_share: float = 0.002  # share of values dropped by the "collector" in a few measured columns
    chunk_rows: int = 262_144  # rows generated per chunk; bounds memory (changing it changes the draws)

    def __post_init__(self) -> None:
        if self.nodes < 3:
            raise ValueError("nodes must be at least 3 (the smallest consensus cluster)")
        if self.hours <= 0 or self.interval_s <= 0:
            raise ValueError("hours and interval_s must be positive")
        if self.n_steps < 2:
            raise ValueError("the time range must hold at least 2 intervals")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError("test_fraction must be in [0, 1)")
        if not 0.0 <= self.missing_share <= MAX_MISSING_SHARE:
            raise ValueError(
                f"missing_share must be in [0, {MAX_MISSING_SHARE}] "
                f"(validation rejects more than {MAX_MISSING_SHARE * 100:g} % missing)"
            )
        if self.extra_peers < 0 or self.chunk_rows < 1 or self.incidents_per_node_day < 0:
            raise ValueError("extra_peers, chunk_rows and incidents_per_node_day must not be negative")
        self.start_epoch_s  # noqa: B018 - parse early so a bad start_utc fails here

    @property
    def n_steps(self) -> int:
        """Number of sample intervals in the whole time range."""
        return int(self.hours * 3600 // self.interval_s)

    @property
    def n_train_steps(self) -> int:
        """Intervals in the training range (the rest is the test range)."""
        return self.n_steps - int(round(self.n_steps * self.test_fraction))

    @property
    def start_epoch_s(self) -> int:
        """start_utc as Unix seconds."""
        parsed = datetime.fromisoformat(self.start_utc)
        if parsed.tzinfo is None:
            raise ValueError("start_utc must carry a UTC offset, e.g. 2026-01-05T00:00:00Z")
        return int(parsed.astimezone(UTC).timestamp())

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for dataset.json."""
        return asdict(self)

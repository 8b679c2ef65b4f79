"""Units a source column may be in, and the factor that turns each into the telemetry column's unit."""

from __future__ import annotations

from training.importers.errors import InputError
from training.schema import Column

# Schema unit -> {source unit: factor that multiplies a source value into the schema unit}.
# Names are case-sensitive on purpose: Mbps (megabits) and MBps-style bytes differ only by case, so
# bytes per second are spelled B/s, kB/s, MB/s, GB/s.
CONVERSIONS: dict[str, dict[str, float]] = {
    "Mbps": {
        "bps": 1e-6,
        "kbps": 1e-3,
        "Mbps": 1.0,
        "Gbps": 1e3,
        "B/s": 8e-6,
        "kB/s": 8e-3,
        "MB/s": 8.0,
        "GB/s": 8e3,
    },
    "ms": {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3, "min": 6e4},
    "ratio 0-1": {"ratio": 1.0, "percent": 0.01, "%": 0.01},
    "pct 0-100": {"pct": 1.0, "percent": 1.0, "%": 1.0, "ratio": 100.0},
    "bytes": {"B": 1.0, "kB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1024.0, "MiB": 2.0**20, "GiB": 2.0**30},
}

# Units of a numeric time column (Unix epoch), as seconds per unit.
EPOCH_UNITS: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def known_units(column: Column) -> list[str]:
    """The source units accepted for a telemetry column (its own unit is always one)."""
    if column.kind == "timestamp" or column.name == "epoch_time":
        return list(EPOCH_UNITS)
    return list(CONVERSIONS.get(column.unit, {column.unit: 1.0}))


def factor(column: Column, unit: str | None, source: str) -> float:
    """Multiplier from `unit` to the column's schema unit; None means the values are already in it.

    Raises InputError naming the source column, the unit and the units known for the column.
    """
    if unit is None:
        return 1.0
    table = {column.unit: 1.0} | CONVERSIONS.get(column.unit, {})
    if unit not in table:
        raise InputError(
            f"column '{source}' (-> {column.name}, {column.unit}): unknown unit '{unit}'; "
            f"known: {', '.join(known_units(column))}"
        )
    return table[unit]

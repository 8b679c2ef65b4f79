"""Which source column becomes which telemetry column, in which unit, and which link a series is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from training.importers.errors import InputError
from training.importers.units import factor
from training.schema import ALIASES, COLUMNS, COLUMNS_BY_NAME, Column

TIME_COLUMNS = ("timestamp", "epoch_time")
ID_COLUMNS = ("node_id", "peer_id")


def telemetry_column(name: str) -> Column:
    """The schema column called `name` (or the column an alias stands for); InputError if none."""
    if name in ALIASES:
        name = ALIASES[name].canonical
    if name not in COLUMNS_BY_NAME:
        raise InputError(f"unknown telemetry column '{name}'; known: {', '.join(c.name for c in COLUMNS)}")
    return COLUMNS_BY_NAME[name]


def parse_pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    """`["a=b", "c=d"]` -> {"a": "b", "c": "d"}; InputError for an item without '=' or a repeated key."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key or not target:
            raise InputError(f"{flag} {value!r}: expected SOURCE=VALUE, e.g. {flag} value=throughput_mbps")
        if key in pairs:
            raise InputError(f"{flag}: column '{key}' given twice")
        pairs[key] = target
    return pairs


@dataclass(frozen=True)
class Mapping:
    """What the user said about the source: column mapping, units, ids (templates) and columns to skip."""

    columns: dict[str, str] = field(default_factory=dict)  # source column -> telemetry column (or alias)
    units: dict[str, str] = field(default_factory=dict)  # source column -> unit of its values
    # Ids of the series when no column carries them; "{name}" is the file name, "{stem}" the name
    # without its last suffix, and a peer_id of "{node_id}" repeats the node (a node-level series).
    node_id: str | None = None
    peer_id: str | None = None
    ignore: tuple[str, ...] = ()
    timezone: str = "UTC"  # of timestamps written without an offset


@dataclass(frozen=True)
class Plan:
    """A Mapping resolved against one file's columns."""

    time_source: str
    time_target: str  # timestamp or epoch_time
    time_unit: str | None  # of a numeric time column
    values: dict[str, tuple[Column, float]]  # source -> (telemetry column, factor into its unit)
    ids: dict[str, str]  # node_id/peer_id -> source column
    id_values: dict[str, str]  # node_id/peer_id -> constant, templates filled in
    units: dict[str, str]  # source -> unit as given, for the manifest

    def describe(self) -> dict[str, dict[str, str]]:
        """Telemetry column -> source column and unit, as written in the import manifest."""
        out: dict[str, dict[str, str]] = {
            "timestamp": {"source": self.time_source, "unit": self.time_unit or "date-time text or timestamp"}
        }
        for name, source in self.ids.items():
            out[name] = {"source": source}
        for name, value in self.id_values.items():
            out[name] = {"value": value}
        for source, (column, _) in self.values.items():
            out[column.name] = {"source": source, "unit": self.units.get(source, column.unit)}
        return out


def fill_id(template: str, path: Path) -> str:
    """An id template with the file's name and stem filled in ({node_id} is kept for the caller)."""
    try:
        return template.format(name=path.name, stem=path.stem, node_id="{node_id}")
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError(
            f"id {template!r}: unknown placeholder {exc}; known: {{name}}, {{stem}}, {{node_id}} (peer_id only)"
        ) from exc


def plan_for(source_columns: Sequence[str], mapping: Mapping, file: str) -> Plan:
    """Resolve the mapping for a file with these columns; every mistake is an InputError naming it."""
    available = ", ".join(source_columns)
    for source in [*mapping.columns, *mapping.units, *mapping.ignore]:
        if source not in source_columns:
            raise InputError(f"{file}: column '{source}' is not in the file; its columns: {available}")
    targets: dict[str, str] = {}
    for source in source_columns:
        if source in mapping.ignore:
            continue
        if source in mapping.columns:
            target = telemetry_column(mapping.columns[source]).name
        elif source in COLUMNS_BY_NAME or source in ALIASES:
            target = telemetry_column(source).name
        else:
            raise InputError(
                f"{file}: column '{source}' is not a telemetry column and is not mapped; "
                f"map it (--map {source}=COLUMN) or leave it out (--ignore {source})"
            )
        if target in targets.values():
            other = next(s for s, t in targets.items() if t == target)
            raise InputError(f"{file}: columns '{other}' and '{source}' both map to {target}")
        targets[source] = target
    for source in mapping.units:
        if source not in targets:
            raise InputError(f"{file}: --unit {source}=...: column '{source}' is not imported")
        if targets[source] in ID_COLUMNS:
            raise InputError(
                f"{file}: --unit {source}=...: column '{source}' is an id ({targets[source]}), it has no unit"
            )
    times = [s for s, t in targets.items() if t in TIME_COLUMNS]
    if not times:
        raise InputError(
            f"{file}: no time column; its columns: {available}; map one, e.g. --map {source_columns[0]}=timestamp"
        )
    if len(times) > 1:
        raise InputError(f"{file}: more than one time column ({', '.join(times)}); map only one")
    ids: dict[str, str] = {}
    id_values: dict[str, str] = {}
    for name, template in (("node_id", mapping.node_id), ("peer_id", mapping.peer_id)):
        column = next((s for s, t in targets.items() if t == name), None)
        if column is not None and template is not None:
            raise InputError(f"{file}: {name} comes from column '{column}' and from --{name.replace('_', '-')}")
        if column is not None:
            ids[name] = column
        elif template is not None:
            id_values[name] = fill_id(template, Path(file))
        else:
            flag = name.replace("_", "-")
            raise InputError(
                f"{file}: no {name}: map a column to it (--map COLUMN={name}) or give --{flag} ID "
                f"(--{flag} '{{stem}}' takes the file name)"
            )
    if id_values.get("node_id") == "{node_id}":
        raise InputError("--node-id '{node_id}': only peer_id can repeat the node id")
    values = {
        s: (COLUMNS_BY_NAME[t], factor(COLUMNS_BY_NAME[t], mapping.units.get(s), s))
        for s, t in targets.items()
        if t not in TIME_COLUMNS and t not in ID_COLUMNS
    }
    if not values:
        raise InputError(f"{file}: no value column to import; map one, e.g. --map value=throughput_mbps")
    return Plan(
        times[0],
        targets[times[0]],
        mapping.units.get(times[0]),
        values,
        ids,
        id_values,
        {s: u for s, u in mapping.units.items() if s != times[0]},
    )

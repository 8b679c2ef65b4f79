"""docs/telemetry-schema.md documents every column, alias and incident type of training.schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.schema import ALIASES, COLUMNS, INCIDENT_FIELDS, INCIDENT_TYPES, Column

DOC = Path(__file__).resolve().parents[2] / "docs" / "telemetry-schema.md"


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: c.name)
def test_every_column_is_documented_with_its_unit(column: Column) -> None:
    rows = [line for line in DOC.read_text().splitlines() if line.startswith(f"| `{column.name}` |")]
    assert rows, f"{column.name} is not in {DOC.name}"
    assert f"| {column.unit} |" in rows[0]


def test_aliases_incident_fields_and_types_are_documented() -> None:
    text = DOC.read_text()
    for name in [*ALIASES, *(f.name for f in INCIDENT_FIELDS), *INCIDENT_TYPES]:
        assert f"`{name}`" in text or name in text, name

"""The version-directory rules: names sort by time, and names starting with '.' are writers' work in progress."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

HIDDEN_PREFIX = "."  # a writer builds a version under such a name and renames it into place when complete


def version_for(moment: datetime) -> str:
    """Sortable version name, YYYYMMDDTHHMMSSZ, of a moment (converted to UTC)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def staging_dir(model_dir: Path, version: str) -> Path:
    """Where a writer builds `<model_dir>/<version>/` before renaming it into place; readers ignore it."""
    return model_dir / f"{HIDDEN_PREFIX}tmp-{version}"


def visible_dirs(path: Path) -> list[Path]:
    """Sub-directories sorted by name, without the hidden ones; raises OSError when `path` cannot be listed.

    Under the model directory these are the models; under a model, its versions, oldest first.
    """
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(HIDDEN_PREFIX))


def newest_version(model_dir: Path) -> Path | None:
    """The newest version directory of one model, or None when it has none (or does not exist)."""
    if not model_dir.is_dir():
        return None
    versions = visible_dirs(model_dir)
    return versions[-1] if versions else None

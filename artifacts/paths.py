"""Files of a version directory: every path a manifest or seal names stays inside its directory."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from artifacts.schema import ArtifactError


def inside(version_dir: Path, name: str, where: str) -> Path:
    """`version_dir / name`, refused (ArtifactError naming `where`) unless it is a plain file name inside it.

    Checked before anything is opened: no absolute path, no `..`, no sub-directories, no symlink (a link
    could point anywhere, including at another version's model, which would then be served under this one).
    """
    parts = PurePosixPath(name).parts
    if not name or "\\" in name or PurePosixPath(name).is_absolute() or len(parts) != 1 or parts[0] in (".", ".."):
        raise ArtifactError(f"{where}: {name!r} is not a file name inside the version directory")
    path = Path(version_dir) / name
    if path.is_symlink():
        raise ArtifactError(f"{where}: {path} is a symlink; a version's files must be its own")
    return path

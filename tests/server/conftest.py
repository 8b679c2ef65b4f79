"""Fixtures: a tiny model set written once, and the real server started on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.tiny_models import write_model_set
from tests.server.helpers import RunningServer, running_server


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory with one version of each of the four tiny models (read-only for tests)."""
    path = tmp_path_factory.mktemp("models")
    write_model_set(path)
    return path


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[RunningServer]:
    """The real server over the shared model set, in-process, on free ports."""
    with running_server(model_dir) as running:
        yield running

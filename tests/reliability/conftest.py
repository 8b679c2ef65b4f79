"""Fixtures shared with tests/server: the tiny model set."""

from __future__ import annotations

from tests.server.conftest import model_dir

__all__ = ["model_dir"]

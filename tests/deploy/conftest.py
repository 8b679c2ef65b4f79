"""Markers of the deployment tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: builds a fresh virtualenv (about a minute); still part of `make test`.")

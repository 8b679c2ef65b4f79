"""tests/conftest.py: a test that skips fails under CI, and still skips on a developer's machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
SUITE = """
import pytest

def test_needs_a_missing_tool():
    pytest.skip("the tool is not installed")

@pytest.mark.skipif(True, reason="marked")
def test_marked():
    pass

def test_runs():
    pass
"""


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 failed, 1 passed, 1 error"), ("", "1 passed, 2 skipped")])
def test_a_skip_fails_only_under_ci(tmp_path: Path, ci: str, outcome: str) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci else {})
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", str(tmp_path)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert outcome in result.stdout, result.stdout
    if ci:
        assert "skipped with CI='true', where no test may skip: the tool is not installed" in result.stdout
        assert "skipped with CI='true', where no test may skip: marked" in result.stdout

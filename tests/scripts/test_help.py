"""Every script under scripts/ answers --help with its usage and exits 0, starting nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.server.helpers import ROOT, subprocess_env

SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))


def test_there_are_scripts_to_check() -> None:
    assert len(SCRIPTS) >= 2


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_every_script_answers_help(script: object) -> None:
    command = [sys.executable, str(script), "--help"]
    done = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage:"), done.stdout[:500]

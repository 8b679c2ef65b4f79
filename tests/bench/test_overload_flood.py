"""`python -m bench.overload --only-flood`: both flood rows, each server started with the extra flags too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import overload
from bench.ghz import GHZ
from bench.tiny_models import write_model_set

pytestmark = pytest.mark.skipif(
    not GHZ.exists() and not os.environ.get("CI"), reason="ghz not installed: run `make .tools/bin/ghz`"
)


def test_only_the_floods_run_and_every_server_gets_the_extra_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_model_set(tmp_path / "models")
    args = ["--model-dir", str(tmp_path / "models"), "--only-flood", "--flood-server-args", "--min-deadline-ms 0"]
    assert overload.main(args) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [
        "--min-deadline-ms 0",
        "--max-pending-rpcs 1 --max-in-flight 8 --min-deadline-ms 0",
    ]
    assert all("OK" in row for row in rows)  # the servers really ran with those flags and answered

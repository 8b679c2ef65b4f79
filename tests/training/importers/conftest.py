"""Shared helpers of the importer tests: run the real command line and read what it wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from training.cli import main


class Run:
    """`python -m training import ...` in-process: exit code, stdout, stderr."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str | Path) -> tuple[int, str, str]:
        code = main(["import", *map(str, args)])
        out, err = self.capsys.readouterr()
        return code, out, err

    def error(self, *args: str | Path) -> str:
        """The one-line error of a run that must fail with exit code 2, and no traceback."""
        code, out, err = self(*args)
        assert code == 2, (out, err)
        assert "Traceback" not in err
        lines = [line for line in err.splitlines() if line.startswith("import: ERROR")]
        assert len(lines) == 1, err
        return lines[0]


@pytest.fixture
def run_import(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys)


def read_outputs(out: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The imported Parquet telemetry and its manifest."""
    manifest = json.loads(out.with_name(out.stem + ".import.json").read_text())
    return pd.read_parquet(out), manifest

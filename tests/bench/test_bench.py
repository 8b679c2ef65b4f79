"""`make bench` end to end at a small size: both floors measured, both ratios in the table, figures finite.

The figures themselves are not asserted (they depend on the machine), only that each was measured.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from bench import bench
from bench.ghz import GHZ
from bench.tiny_models import write_model_set

pytestmark = pytest.mark.skipif(
    not GHZ.exists() and not os.environ.get("CI"), reason="ghz not installed: run `make .tools/bin/ghz`"
)
QUICK = [
    "--batches",
    "1,4",
    "--latency-requests",
    "40",
    "--latency-rounds",
    "2",
    "--scaling-s",
    "0.3",
    "--ramp-rates",
    "50",
]
QUICK += ["--ramp-step-s", "0.5"]


def test_the_benchmark_measures_the_server_beside_both_floors(tmp_path: Path) -> None:
    models, out = tmp_path / "models", tmp_path / "report"
    write_model_set(models)
    assert bench.main(["--model-dir", str(models), *QUICK, "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    table = summary.split("## Side by side", 1)[1].split("## Batch scaling", 1)[0]
    header, _rule, *rows = [line for line in table.splitlines() if line.startswith("|")]
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[-3:] == [
        "bound (echo+model)/(floor+model)",
        "ratio server/(floor+model)",
        "ratio server/(echo+model)",
    ]
    assert len(rows) == 4  # one per model
    for row in rows:
        cells = dict(zip(columns, (c.strip() for c in row.strip("|").split("|")), strict=True))
        measured = ("echo floor p50 ms", "echo+model p50 ms", "server p50 ms", "onnxruntime in server ms (mean)")
        for name in (*measured, "handler minus model ms (mean)"):
            assert math.isfinite(float(cells[name])) and float(cells[name]) > 0, (name, row)
        assert float(cells["ratio server/(echo+model)"]) > 0, row
        assert float(cells["bound (echo+model)/(floor+model)"]) > 0, row

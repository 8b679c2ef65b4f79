"""`make bench-request-path` end to end on tiny models: every table row measured, figures finite and positive."""

from __future__ import annotations

import math
from pathlib import Path

from bench import request_path
from bench.tiny_models import write_model_set


def test_the_request_path_benchmark_measures_every_rpc_and_model(tmp_path: Path) -> None:
    models, out = tmp_path / "models", tmp_path / "report"
    write_model_set(models)
    assert request_path.main(["--model-dir", str(models), "--calls", "20", "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    rows = [line for line in summary.splitlines() if line.startswith("| ") and not line.startswith("| rpc")]
    rows = [r for r in rows if not r.startswith("| model")]
    assert len(rows) == 8  # four RPCs, then four models
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        assert all(math.isfinite(float(c)) for c in cells), row
    assert "One full garbage collection in a process serving the models" in summary

"""`make loadtest` end to end at a low rate: reports written, the per-process spread shown, the exit code right.

The gate's figures themselves are not asserted (they depend on the machine); the budget is set so the
verdict is known: generous for the pass run, impossible for the fail run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import loadtest
from bench.ghz import GHZ
from bench.tiny_models import write_model_set

pytestmark = pytest.mark.skipif(not GHZ.exists(), reason="ghz not installed: run `make .tools/bin/ghz`")
QUICK = ["--rate", "50", "--batch-rate", "20", "--duration-s", "1", "--ramp-rates", "50", "--ramp-step-s", "1"]
SPREAD = re.compile(r"(\d+) conn, (\d+\.\d\d) cores")
GC = re.compile(r"\d+/\d+/\d+, \d+\.\d ms")


def _gate_rows(summary: str) -> list[list[str]]:
    section = summary.split("## Gate", 1)[1].split("## Ramp", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| ")][
        1:
    ]


def test_a_run_within_budget_passes_and_shows_how_load_fell_on_each_process(tmp_path: Path) -> None:
    models, out = tmp_path / "models", tmp_path / "report"
    write_model_set(models)
    args = ["--model-dir", str(models), "--processes", "2", "--connections", "4", "--budget-ms", "1000"]
    args += ["--neighbours", "1"]
    assert loadtest.main([*args, *QUICK, "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    assert summary.rstrip().endswith("PASS")
    rows = _gate_rows(summary)
    assert len(rows) == 8  # four RPCs, single and batch
    for row in rows:
        assert row[9] == "pass", row
        server_p50_ms, server_p99_ms = float(row[10]), float(row[11])  # the server's own histogram, both processes
        assert 0 < server_p50_ms <= server_p99_ms, row
        assert GC.fullmatch(row[12]), row  # the server's collections by generation in the phase, from /metrics
        per_process = SPREAD.findall(row[-1])
        assert len(per_process) == 2, row[-1]  # one entry per server process
        assert sum(int(n) for n, _ in per_process) == 4, row[-1]  # every ghz connection landed on one of them
        assert sum(float(c) for _, c in per_process) > 0, row[-1]
    results = json.loads((out / "summary.json").read_text())
    assert results["neighbours"]["processes"] == 1
    assert results["neighbours"]["cores_used"] > 0.05  # the neighbour really ran beside the server
    assert "Busy neighbours: 1 process(es) at nice 19" in summary
    assert len(results["DetectAnomaly/b1/gate"]["connections"]) == 2
    assert [set(g) for g in results["DetectAnomaly/b1/gate"]["gc_pauses"]] == [{"sum_s", "count"}] * 3
    assert results["DetectAnomaly/max_rate_rps"] == 50
    assert (out / "DetectAnomaly-b1-gate.json").exists()


def test_a_missed_budget_fails_the_gate_and_names_what_missed(tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert loadtest.main(["--echo", "--budget-ms", "0.001", *QUICK, "--out", str(out)]) == 1
    verdict = (out / "summary.md").read_text().rsplit("## Verdict", 1)[1]
    assert "FAIL" in verdict and "DetectAnomaly batch 1: p99" in verdict

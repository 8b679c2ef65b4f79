"""The summary table: a failed model gets its own FAILED row with the reasons."""

from __future__ import annotations

from training.metrics import Evaluation
from training.report import evaluation_json, summary_rows


def _entry(failures: list[str]) -> dict:
    evaluation = Evaluation(
        "consensus_latency", {"f1": 0.2}, [], {"never_flag": {"f1": 0.0}}, primary_metric="f1", failures=failures
    )
    return {"evaluation": evaluation_json(evaluation), "failures": failures, "status": "published"}


def test_a_failed_model_has_a_failed_row_with_its_reasons() -> None:
    rows = summary_rows([_entry(["the flag catches none of the 12 positive test windows", "parity: a | b"])])
    (failed,) = [r for r in rows if "FAILED" in r]
    assert failed.startswith("| consensus_latency | **FAILED** |")
    assert "catches none of the 12 positive test windows; parity: a / b" in failed  # a | would split the cell
    assert failed.count("|") == 7  # the table keeps its six columns


def test_a_model_that_did_not_fail_has_no_failed_row() -> None:
    assert not [r for r in summary_rows([_entry([])]) if "FAILED" in r]

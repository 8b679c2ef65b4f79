"""Metric helpers: thresholds, PR-AUC and targets behave as the reports claim."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    Evaluation,
    Target,
    binary_metrics,
    detector_failures,
    pr_auc,
    regression_metrics,
    threshold_for_best_f1,
    threshold_for_recall,
)


def test_recall_threshold_reaches_the_recall_and_no_higher_threshold_does() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(2000) < 0.1
    score = rng.normal(size=2000) + 1.5 * labels
    t = threshold_for_recall(labels, score, 0.9)
    assert binary_metrics(labels, score >= t)["recall"] >= 0.9
    higher = np.min(score[labels & (score > t)])
    assert binary_metrics(labels, score >= higher)["recall"] < 0.9


def test_best_f1_threshold_beats_every_other_threshold() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random(500) < 0.2
    score = np.round(rng.normal(size=500) + 2.0 * labels, 1)  # ties on purpose
    best = binary_metrics(labels, score >= threshold_for_best_f1(labels, score))["f1"]
    assert all(binary_metrics(labels, score >= t)["f1"] <= best + 1e-12 for t in np.unique(score))


def test_pr_auc_is_one_for_a_perfect_ranking_and_prevalence_for_a_constant() -> None:
    labels = np.array([True, True, False, False, False])
    assert pr_auc(labels, np.array([0.9, 0.8, 0.3, 0.2, 0.1])) == pytest.approx(1.0)
    assert pr_auc(labels, np.array([0.9, 0.1, 0.8, 0.7, 0.6])) < 1.0


def test_regression_metrics_and_targets() -> None:
    m = regression_metrics(np.array([100.0, 200.0, 300.0]), np.array([110.0, 190.0, 300.0]))
    assert m["mae"] == pytest.approx(20 / 3)
    assert m["mape_pct"] == pytest.approx((10 + 5 + 0) / 3)
    assert Target("mape_pct", "<", 5.5).met(m["mape_pct"]) and not Target("mape_pct", "<", 5.0).met(m["mape_pct"])
    assert not Target("correlation", ">=", 0.999).met(float("nan"))


def test_primary_metric_decides_which_baselines_are_beaten() -> None:
    from training.metrics import Evaluation

    evaluation = Evaluation(
        "m",
        {"f1": 0.5, "accuracy": 0.1},
        [Target("accuracy", ">=", 0.98)],
        {"weak": {"f1": 0.4, "accuracy": 0.9}, "strong": {"f1": 0.6}, "unknown": {"f1": float("nan")}},
        primary_metric="f1",
    )
    assert evaluation.beats_baselines == {"weak": True, "strong": False, "unknown": False}
    assert not evaluation.passed
    lower = Evaluation("m", {"mae": 1.0}, [], {"a": {"mae": 2.0}}, primary_metric="mae", higher_is_better=False)
    assert lower.beats_baselines == {"a": True}


def test_strict_rule_is_beating_every_baseline_and_targets_only_report() -> None:
    from training.metrics import Evaluation

    missed_target = Evaluation("m", {"f1": 0.5}, [Target("f1", ">=", 0.9)], {"a": {"f1": 0.4}}, primary_metric="f1")
    assert missed_target.passed and not missed_target.targets_met
    assert not Evaluation("m", {"f1": 0.5}, [], {}, primary_metric="f1").passed  # nothing shown to be beaten
    tie = Evaluation("m", {"f1": 0.5}, [], {"a": {"f1": 0.5}}, primary_metric="f1")
    assert not tie.passed


def test_a_flag_that_catches_nothing_or_flags_every_normal_row_is_a_failure() -> None:

    actual = np.array([True] * 5 + [False] * 95)
    nothing = np.zeros(100, bool)
    nothing[50] = True  # one false alarm, no true positive
    (failure,) = detector_failures(actual, nothing)
    assert failure.startswith("the flag catches none of the 5 positive test rows (0 true positives; 1 flagged)")
    (failure,) = detector_failures(actual, np.ones(100, bool))
    assert "raised on 100.0% of the 95 normal test rows" in failure and "(nearly) everything" in failure
    useful = actual.copy()
    useful[:4] = False  # catches one of five, flags nothing else
    assert detector_failures(actual, useful) == []
    assert detector_failures(np.zeros(100, bool), np.zeros(100, bool)) == []  # no positives: nothing to catch


def test_a_failed_model_does_not_pass_even_when_it_beats_every_baseline() -> None:
    evaluation = Evaluation(
        "reliability_detector",
        {"pr_auc": 0.9},
        [],
        {"zscore_rule": {"pr_auc": 0.5}},
        primary_metric="pr_auc",
        failures=["the flag catches none of the 5 positive test rows"],
    )
    assert all(evaluation.beats_baselines.values())
    assert evaluation.failed and not evaluation.passed

"""Metrics, targets and their honest comparison: every figure beside its target and a naive baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Target:
    """A goal for one metric: `op` is '>=', '>' or '<'."""

    metric: str
    op: str
    value: float

    def met(self, measured: float) -> bool:
        """Whether the measured value meets the target (NaN never does)."""
        if not np.isfinite(measured):
            return False
        return {">=": measured >= self.value, ">": measured > self.value, "<": measured < self.value}[self.op]


def beats(model: dict[str, float], baseline: dict[str, float], metric: str, higher_is_better: bool = True) -> bool:
    """Whether the model is strictly better than a baseline on `metric` (a NaN on either side never is)."""
    mine, theirs = model.get(metric, float("nan")), baseline.get(metric, float("nan"))
    if not (np.isfinite(mine) and np.isfinite(theirs)):
        return False
    return bool(mine > theirs) if higher_is_better else bool(mine < theirs)


@dataclass
class Evaluation:
    """A model's test metrics, the targets they are held to and the baselines on the same rows.

    With `primary_metric` set and `beats_baselines` left empty, each baseline is compared on that metric.
    `failures` are reasons the model is a failed model whatever its figures (a detector whose flag catches
    nothing, or flags everything: detector_failures).
    """

    model: str
    metrics: dict[str, float]
    targets: list[Target]
    baselines: dict[str, dict[str, float]]  # baseline name -> its metrics
    beats_baselines: dict[str, bool] = field(default_factory=dict)  # baseline name -> model is better
    notes: list[str] = field(default_factory=list)
    primary_metric: str = ""  # the metric "beats a baseline" compares; "" when beats_baselines is given
    higher_is_better: bool = True  # direction of the primary metric
    failures: list[str] = field(default_factory=list)  # why this is a failed model; empty when it is not

    def __post_init__(self) -> None:
        if self.primary_metric and not self.beats_baselines:
            self.beats_baselines = {
                name: beats(self.metrics, values, self.primary_metric, self.higher_is_better)
                for name, values in self.baselines.items()
            }

    def target_table(self) -> dict[str, dict[str, Any]]:
        """metric -> {op, value, measured, met}, for manifest.json and reports."""
        return {
            t.metric: {
                "op": t.op,
                "value": t.value,
                "measured": self.metrics.get(t.metric),
                "met": t.met(self.metrics.get(t.metric, float("nan"))),
            }
            for t in self.targets
        }

    @property
    def targets_met(self) -> bool:
        """Every target of the design met (reported; it does not gate publishing)."""
        return all(v["met"] for v in self.target_table().values())

    @property
    def failed(self) -> bool:
        """A failed model (see `failures`): reported FAILED, refused by --strict, a non-zero exit."""
        return bool(self.failures)

    @property
    def passed(self) -> bool:
        """The strict rule: the model is not a failed one and beats every one of its baselines (and has one).

        The design's targets stay in the report, marked met or missed, but a model that beats every
        naive rule on the same rows is worth serving whether or not it reaches a seed figure.
        """
        return not self.failed and bool(self.beats_baselines) and all(self.beats_baselines.values())


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, MAPE (over rows with actual > 1 % of the median, to keep near-zero rows from dominating),
    RMSE and Pearson correlation."""
    actual = np.asarray(actual, np.float64)
    predicted = np.asarray(predicted, np.float64)
    error = predicted - actual
    floor = 0.01 * float(np.median(np.abs(actual))) if actual.size else 0.0
    usable = np.abs(actual) > floor
    mape = float(np.mean(np.abs(error[usable]) / np.abs(actual[usable])) * 100) if usable.any() else float("nan")
    corr = float(np.corrcoef(actual, predicted)[0, 1]) if actual.size > 1 and np.std(predicted) > 0 else float("nan")
    return {
        "mae": float(np.mean(np.abs(error))),
        "mape_pct": mape,
        "rmse": float(np.sqrt(np.mean(error**2))),
        "correlation": corr,
    }


def binary_metrics(actual: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and false-positive rate of boolean flags."""
    actual = np.asarray(actual, bool)
    flagged = np.asarray(flagged, bool)
    tp = float((actual & flagged).sum())
    fp = float((~actual & flagged).sum())
    fn = float((actual & ~flagged).sum())
    tn = float((~actual & ~flagged).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": (tp + tn) / max(tp + tn + fp + fn, 1.0),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
        "positives": tp + fn,
        "rows": tp + tn + fp + fn,
    }


FLAGS_EVERYTHING_SHARE = 0.99  # a flag raised on this share of normal rows flags (nearly) everything


def detector_failures(actual: np.ndarray, flagged: np.ndarray, rows: str = "test rows") -> list[str]:
    """Why a detector's flag is useless on these rows: it catches none of the positives (while there
    are some), or it is raised on (nearly) every normal row. Empty when neither holds."""
    actual = np.asarray(actual, bool)
    flagged = np.asarray(flagged, bool)
    failures = []
    positives = int(actual.sum())
    if positives and not (actual & flagged).any():
        failures.append(
            f"the flag catches none of the {positives} positive {rows} (0 true positives; "
            f"{int(flagged.sum())} flagged): the threshold chosen on validation catches nothing"
        )
    normal = ~actual
    if normal.any() and flagged[normal].mean() >= FLAGS_EVERYTHING_SHARE:
        failures.append(
            f"the flag is raised on {flagged[normal].mean():.1%} of the {int(normal.sum())} normal {rows} "
            f"({flagged.mean():.1%} of all): the threshold chosen on validation flags (nearly) everything"
        )
    return failures


def pr_auc(actual: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision, step-wise, no interpolation)."""
    actual = np.asarray(actual, bool)
    if not actual.any():
        return float("nan")
    order = np.argsort(-np.asarray(score, np.float64), kind="stable")
    hits = actual[order]
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, hits.size + 1)
    return float(precision[hits].sum() / hits.sum())


def threshold_for_recall(actual: np.ndarray, score: np.ndarray, recall: float) -> float:
    """The highest score threshold (flag = score >= t) whose recall on these rows is at least `recall`."""
    positives = np.sort(np.asarray(score, np.float64)[np.asarray(actual, bool)])
    if positives.size == 0:
        raise ValueError("no positive rows to choose a threshold on")
    k = int(np.floor((1.0 - recall) * positives.size + 1e-9))
    return float(positives[min(k, positives.size - 1)])


def threshold_for_best_f1(actual: np.ndarray, score: np.ndarray) -> float:
    """The score threshold (flag = score >= t) with the highest F1 on these rows."""
    actual = np.asarray(actual, bool)
    if not actual.any():
        raise ValueError("no positive rows to choose a threshold on")
    order = np.argsort(-np.asarray(score, np.float64), kind="stable")
    ranked = np.asarray(score, np.float64)[order]
    tp = np.cumsum(actual[order])
    flagged = np.arange(1, ranked.size + 1)
    f1 = 2 * tp / (flagged + actual.sum())
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]  # a threshold flags every row tied with it
    best = int(np.argmax(np.where(last_of_tie, f1, -1.0)))
    return float(ranked[best])

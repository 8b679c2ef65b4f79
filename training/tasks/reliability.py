"""Reliability detector: IsolationForest over a node's reliability metrics, labels from joined incidents."""

from __future__ import annotations

import time

import numpy as np

from training.features import Feature, feature_indices, feature_matrix, features_from_manifest
from training.metrics import Evaluation, Target, binary_metrics, pr_auc, threshold_for_best_f1, threshold_for_recall
from training.splits import TEST, TRAIN, VALIDATION, split_counts, temporal_split
from training.tasks.common import TrainedModel, TrainSettings, incident_labels, progress, run_onnx
from training.validate import TelemetryData

NAME = "reliability_detector"
# By feature name, so a model trained on a subset of the features finds them at their positions in it.
LOG1P_FEATURES = (
    "failure_ratio",
    "packet_loss_ratio",
    "retransmits_count",
    "error_budget_burn_rate",
    "rtt_ms",
)  # heavy right tails
OUTPUTS = [
    {
        "name": "anomaly_score",
        "dtype": "float32",
        "unit": "score 0-1",
        "description": "2^(-mean path length / c(max_samples)); ~0.5 typical, towards 1 anomalous",
    },
    {"name": "is_anomaly", "dtype": "bool", "unit": "flag", "description": "anomaly_score >= threshold"},
]


def _dataset(data: TelemetryData, features: tuple[Feature, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows, incident labels, and rows usable (no missing value: counted, never imputed)."""
    x = feature_matrix(data.metrics, features)
    labels = incident_labels(data.metrics, data.incidents, data.interval_s)
    return x, labels, np.isfinite(x).all(axis=1)


class ZScoreRule:
    """Baseline: the largest per-feature |z| against normal training rows, after the same log1p."""

    def __init__(self, x_normal: np.ndarray, log1p: tuple[int, ...]) -> None:
        from training.export_forest import ForestPreprocessing  # onnx and scikit-learn: not at CLI start-up

        self.prep = ForestPreprocessing(log1p)
        t = self.prep.transform(x_normal).astype(np.float64)
        self.mean, self.std = t.mean(axis=0), np.maximum(t.std(axis=0), 1e-9)

    def score(self, x: np.ndarray) -> np.ndarray:
        t = self.prep.transform(x).astype(np.float64)
        return np.max(np.abs((t - self.mean) / self.std), axis=1)


def choose_threshold(labels: np.ndarray, score: np.ndarray, settings: TrainSettings) -> float:
    """The flag threshold on validation rows, by the configured policy."""
    if settings.anomaly_threshold == "recall":
        return threshold_for_recall(labels, score, settings.target_accuracy)
    return threshold_for_best_f1(labels, score)


def _evaluate(
    labels: np.ndarray,
    score: np.ndarray,
    flag: np.ndarray,
    baseline_score: np.ndarray,
    baseline_threshold: float,
    target: float,
) -> Evaluation:
    metrics = binary_metrics(labels, flag) | {"pr_auc": pr_auc(labels, score)}
    base = binary_metrics(labels, baseline_score >= baseline_threshold) | {"pr_auc": pr_auc(labels, baseline_score)}
    return Evaluation(
        model=NAME,
        metrics=metrics,
        targets=[Target("recall", ">=", target), Target("pr_auc", ">=", 0.90)],
        baselines={"zscore_rule": base},
        beats_baselines={"zscore_rule": metrics["pr_auc"] > base["pr_auc"]},
    )


def train(data: TelemetryData, settings: TrainSettings) -> TrainedModel:
    """Fit on normal training rows, choose the threshold on validation, evaluate the ONNX graph on test."""
    from sklearn.ensemble import IsolationForest

    from training.export_forest import ForestPreprocessing, check_forest_parity, forest_latency_us, forest_to_onnx

    started = time.perf_counter()
    features = data.features(NAME)
    log1p = feature_indices(features, LOG1P_FEATURES)
    x, labels, usable = _dataset(data, features)
    split = temporal_split(data.metrics, ("node_id", "peer_id"))
    split = np.where(usable, split, -1)
    fit_rows = (split == TRAIN) & ~labels
    progress(
        NAME,
        f"fitting IsolationForest(100) on {int(fit_rows.sum())} normal training rows of "
        f"{', '.join(f.name for f in features)} "
        f"({int((~usable).sum())} rows with a missing value left out)",
    )
    prep = ForestPreprocessing(log1p)
    forest = IsolationForest(n_estimators=100, contamination="auto", max_samples="auto", random_state=settings.seed)
    forest.fit(prep.transform(x[fit_rows]))
    val = split == VALIDATION
    if not labels[val].any():
        raise ValueError(
            "no incident overlaps the validation period (the 70-85 % part of each link's time range), so no flag "
            "threshold can be chosen: pass --incidents-path with incidents for these nodes, or train on a longer range"
        )
    val_score = -forest.score_samples(prep.transform(x[val]))
    threshold = choose_threshold(labels[val], val_score, settings)
    baseline = ZScoreRule(x[fit_rows], log1p)
    baseline_threshold = choose_threshold(labels[val], baseline.score(x[val]), settings)
    model = forest_to_onnx(forest, threshold, prep)
    test = split == TEST
    parity = check_forest_parity(model, forest, x[test], threshold, prep)
    onnx_bytes = model.SerializeToString()
    out = run_onnx(onnx_bytes, x[test])
    baseline_test_score = baseline.score(x[test])
    evaluation = _evaluate(
        labels[test],
        out["anomaly_score"],
        out["is_anomaly"],
        baseline_test_score,
        baseline_threshold,
        settings.target_accuracy,
    )
    recall_threshold = threshold_for_recall(labels[val], val_score, settings.target_accuracy)
    at_recall = binary_metrics(labels[test], out["anomaly_score"] >= recall_threshold)
    evaluation.notes += [
        f"threshold {threshold:.4f} chosen on validation by policy '{settings.anomaly_threshold}' "
        "(f1: best F1; recall: the highest threshold reaching the recall target)",
        f"for comparison, the validation threshold for recall >= {settings.target_accuracy} "
        f"({recall_threshold:.4f}) gives on test: recall {at_recall['recall']:.3f}, precision "
        f"{at_recall['precision']:.3f}, false-positive rate {at_recall['false_positive_rate']:.3f}",
    ]
    plots = {}
    if settings.plots_dir is not None:
        from training import plots as p

        plots["pr_curve"] = p.pr_curves(
            labels[test],
            {"isolation forest": out["anomaly_score"], "z-score rule": baseline_test_score},
            settings.plots_dir / f"{NAME}_pr_curve.png",
        )
    return TrainedModel(
        name=NAME,
        rpc="DetectAnomaly",
        description="IsolationForest(100 trees) over a node's reliability metrics; score 0-1 with a flag.",
        onnx_bytes=onnx_bytes,
        input_name="node_metrics",
        input_shape=[None, len(features)],
        features=[f.manifest_entry() for f in features],
        outputs=OUTPUTS,
        evaluation=evaluation,
        thresholds={"anomaly_score": threshold},
        constants={"preprocessing": prep.to_manifest(), "baseline_zscore_threshold": baseline_threshold},
        parity=parity,
        latency_us={
            "single_row": forest_latency_us(model, x.shape[1]),
            "batch_64": forest_latency_us(model, x.shape[1], 64),
        },
        split_counts=split_counts(split) | {"missing_value_rows": int((~usable).sum())},
        plots=plots,
        example_input=x[test][:1],
        train_seconds=time.perf_counter() - started,
    )


def evaluate(onnx_bytes: bytes, manifest: dict, data: TelemetryData) -> Evaluation:
    """Re-evaluate an exported detector on other telemetry (every row is test)."""
    features = features_from_manifest(NAME, manifest)
    x, labels, usable = _dataset(data, features)
    out = run_onnx(onnx_bytes, x[usable])
    normal = ~labels[usable]
    # Fit on this data's normal rows: a generous baseline.
    baseline = ZScoreRule(x[usable][normal], feature_indices(features, LOG1P_FEATURES))
    base_threshold = float(manifest["constants"]["baseline_zscore_threshold"])
    return _evaluate(
        labels[usable],
        out["anomaly_score"],
        out["is_anomaly"],
        baseline.score(x[usable]),
        base_threshold,
        float(manifest["targets"]["recall"]["value"]),
    )

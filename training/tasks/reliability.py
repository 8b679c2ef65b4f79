"""Reliability detector: IsolationForest over a node's reliability metrics, labels from joined incidents."""

from __future__ import annotations

import time

import numpy as np

from training.features import Feature, feature_indices, feature_matrix, features_from_manifest
from training.metrics import (
    Evaluation,
    Target,
    binary_metrics,
    detector_failures,
    pr_auc,
    threshold_for_best_f1,
    threshold_for_recall,
)
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


class RobustMadRule:
    """Baseline: the largest per-feature robust z, |x - median| / (1.4826 MAD), against normal training rows.

    A feature that is mostly one value (loss, failures) has a MAD of 0; its scale falls back to the mean
    absolute deviation (x 1.2533, the same normal-consistency factor), then to 1e-9.
    """

    def __init__(self, x_normal: np.ndarray, log1p: tuple[int, ...]) -> None:
        from training.export_forest import ForestPreprocessing  # onnx and scikit-learn: not at CLI start-up

        self.prep = ForestPreprocessing(log1p)
        t = self.prep.transform(x_normal).astype(np.float64)
        self.median = np.median(t, axis=0)
        mad = 1.4826 * np.median(np.abs(t - self.median), axis=0)
        mean_ad = 1.2533 * np.mean(np.abs(t - self.median), axis=0)
        self.scale = np.maximum(np.where(mad > 0, mad, mean_ad), 1e-9)

    def score(self, x: np.ndarray) -> np.ndarray:
        t = self.prep.transform(x).astype(np.float64)
        return np.max(np.abs(t - self.median) / self.scale, axis=1)


def choose_threshold(labels: np.ndarray, score: np.ndarray, settings: TrainSettings) -> float:
    """The flag threshold on validation rows, by the configured policy."""
    if settings.anomaly_threshold == "recall":
        return threshold_for_recall(labels, score, settings.target_accuracy)
    return threshold_for_best_f1(labels, score)


def _evaluate(
    labels: np.ndarray,
    score: np.ndarray,
    flag: np.ndarray,
    baselines: dict[str, tuple[np.ndarray, float]],
    target: float,
) -> Evaluation:
    """Model and each baseline (name -> test scores, validation threshold) on the same rows, by PR-AUC."""
    metrics = binary_metrics(labels, flag) | {"pr_auc": pr_auc(labels, score)}
    return Evaluation(
        model=NAME,
        metrics=metrics,
        targets=[Target("recall", ">=", target), Target("pr_auc", ">=", 0.90)],
        baselines={
            name: binary_metrics(labels, s >= t) | {"pr_auc": pr_auc(labels, s)} for name, (s, t) in baselines.items()
        },
        primary_metric="pr_auc",
        failures=detector_failures(labels, flag),
        notes=[
            "the baselines are compared on PR-AUC (threshold-free); each baseline's flag threshold is chosen on "
            "validation by the same policy as the model's, its scaling fit on normal training rows"
        ],
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
    rules: dict[str, ZScoreRule | RobustMadRule] = {
        "zscore_rule": ZScoreRule(x[fit_rows], log1p),
        "robust_mad_rule": RobustMadRule(x[fit_rows], log1p),
    }
    rule_thresholds = {n: choose_threshold(labels[val], rule.score(x[val]), settings) for n, rule in rules.items()}
    model = forest_to_onnx(forest, threshold, prep)
    test = split == TEST
    parity = check_forest_parity(model, forest, x[test], threshold, prep, settings.parity_tolerance)
    onnx_bytes = model.SerializeToString()
    out = run_onnx(onnx_bytes, x[test])
    rule_scores = {name: rule.score(x[test]) for name, rule in rules.items()}
    evaluation = _evaluate(
        labels[test],
        out["anomaly_score"],
        out["is_anomaly"],
        {name: (rule_scores[name], rule_thresholds[name]) for name in rules},
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
            {"isolation forest": out["anomaly_score"], "z-score rule": rule_scores["zscore_rule"]},
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
        constants={
            "preprocessing": prep.to_manifest(),
            "baseline_zscore_threshold": rule_thresholds["zscore_rule"],
            "baseline_robust_mad_threshold": rule_thresholds["robust_mad_rule"],
            # p25/p50/p75 of each feature over normal training rows (raw units): what a healthy node looks like
            "normal_feature_quartiles": np.percentile(x[fit_rows], [25, 50, 75], axis=0).tolist(),
        },
        parity=parity.report,
        parity_check=parity,
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
    log1p = feature_indices(features, LOG1P_FEATURES)
    # The rules are fit on this data's normal rows (a generous baseline); their thresholds travel in the manifest.
    rules: dict[str, tuple[ZScoreRule | RobustMadRule, str]] = {
        "zscore_rule": (ZScoreRule(x[usable][normal], log1p), "baseline_zscore_threshold"),
        "robust_mad_rule": (RobustMadRule(x[usable][normal], log1p), "baseline_robust_mad_threshold"),
    }
    constants = manifest["constants"]
    return _evaluate(
        labels[usable],
        out["anomaly_score"],
        out["is_anomaly"],
        {
            name: (rule.score(x[usable]), float(constants[key]))
            for name, (rule, key) in rules.items()
            if key in constants  # a model exported before the robust rule carries only the z-score threshold
        },
        float(manifest["targets"]["recall"]["value"]),
    )

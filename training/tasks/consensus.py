"""Consensus latency: an LSTM autoencoder over 20 commit latencies, trained on normal windows only."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from training.features import CONSENSUS_FEATURE, MODEL_DATA
from training.metrics import Evaluation, Target, binary_metrics, pr_auc
from training.splits import TEST, TRAIN, VALIDATION, split_counts, temporal_split
from training.tasks.common import (
    TrainedModel,
    TrainSettings,
    fit_keras,
    incident_labels,
    progress,
    run_onnx,
    sample_rows,
    seed_everything,
)
from training.validate import TelemetryData
from training.windows import Windows, make_windows, sort_by_group_time

NAME = "consensus_latency"
STEPS = MODEL_DATA[NAME].window_steps
THRESHOLD_PERCENTILE = 98.0  # of reconstruction error on normal validation windows
OUTPUTS = [
    {
        "name": "reconstruction_error",
        "dtype": "float32",
        "unit": "MSE in scaled log units",
        "description": "mean squared error of the autoencoder's reconstruction of the window",
    },
    {"name": "is_high_latency", "dtype": "bool", "unit": "flag", "description": "reconstruction_error > threshold"},
]


def _quorum_incident_labels(metrics: pd.DataFrame, incidents: pd.DataFrame, interval_s: float) -> np.ndarray:
    """Bool per row: an incident overlaps the row's interval on its node or on any node it links to.

    A node's commit latency depends on its quorum peers (a crashed or partitioned leader stalls every
    member), and the nodes a node links to are its cluster mates plus a few others, so the label is
    the incident window join widened from the node to its linked peers.
    """
    if not len(incidents) or "peer_id" not in metrics:  # without links, only the node's own incidents
        return incident_labels(metrics, incidents, interval_s)
    links = metrics[["node_id", "peer_id"]].drop_duplicates()
    # Each peer's incidents, re-homed onto every node that links to that peer, joined in one pass.
    rehomed = links.merge(incidents, left_on="peer_id", right_on="node_id", suffixes=("", "_peer"))
    rehomed = rehomed.drop(columns=["peer_id", "node_id_peer"])
    widened = pd.concat([incidents, rehomed[incidents.columns]], ignore_index=True)
    return incident_labels(metrics, widened, interval_s)


def node_windows(data: TelemetryData) -> tuple[Windows, np.ndarray]:
    """Windows of 20 consecutive consensus latencies per node, and whether each overlaps a quorum incident.

    Every link row of a node carries the node's commit latency, so one row per (node, interval) is kept.
    """
    metrics = data.metrics
    labels = _quorum_incident_labels(metrics, data.incidents, data.interval_s)
    frame = pd.DataFrame(
        {
            "node_id": metrics["node_id"].to_numpy(),
            "peer_id": "",
            "epoch_time": metrics["epoch_time"].to_numpy(),
            CONSENSUS_FEATURE.name: CONSENSUS_FEATURE.values(metrics),
            "incident": labels,
        }
    )
    frame = frame.groupby(["node_id", "epoch_time"], as_index=False, sort=False).agg(
        {"peer_id": "first", CONSENSUS_FEATURE.name: "first", "incident": "max"}
    )
    frame = sort_by_group_time(frame, ("node_id",))
    windows = make_windows(frame, ("node_id",), [CONSENSUS_FEATURE.name], STEPS, data.interval_s, with_target=False)
    flags = frame["incident"].to_numpy(bool)
    overlap = np.zeros(len(windows.last_rows), dtype=bool)
    for lag in range(STEPS):
        overlap |= flags[windows.last_rows - lag]
    return windows, overlap


class RollingZScore:
    """Baseline: z of the newest latency against the 19 before it, in log space."""

    @staticmethod
    def score(x: np.ndarray) -> np.ndarray:
        logged = np.log1p(np.maximum(x.astype(np.float64), 0.0))
        history = logged[:, :-1]
        return np.abs(logged[:, -1] - history.mean(axis=1)) / np.maximum(history.std(axis=1), 1e-6)


def _evaluate(
    labels: np.ndarray, out: dict[str, np.ndarray], baseline_score: np.ndarray, baseline_threshold: float, target: float
) -> Evaluation:
    metrics = binary_metrics(labels, out["is_high_latency"]) | {"pr_auc": pr_auc(labels, out["reconstruction_error"])}
    base = binary_metrics(labels, baseline_score > baseline_threshold) | {"pr_auc": pr_auc(labels, baseline_score)}
    never = binary_metrics(labels, np.zeros_like(labels))
    return Evaluation(
        NAME,
        metrics,
        [Target("accuracy", ">=", target)],
        {"rolling_zscore": base, "never_flag": never},
        {"rolling_zscore": metrics["f1"] > base["f1"], "never_flag": metrics["f1"] > never["f1"]},
        notes=[
            "positives: windows overlapping an incident of the node or of a node it links to (its quorum "
            "peers), by window join",
            "accuracy is dominated by the normal majority: never_flag shows the accuracy of flagging nothing; "
            "the baselines are compared on F1",
        ],
    )


def _fit(x: np.ndarray, x_val: np.ndarray, preprocessor: Any, settings: TrainSettings) -> tuple[Any, dict]:
    import keras
    import tensorflow as tf

    from training.models import ConsensusArch, consensus_autoencoder

    scaled = preprocessor.apply(tf.constant(x[..., None])).numpy()
    scaled_val = preprocessor.apply(tf.constant(x_val[..., None])).numpy()
    model = consensus_autoencoder(STEPS, ConsensusArch())
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mse")
    return model, fit_keras(NAME, model, scaled, scaled, scaled_val, scaled_val, settings)


def train(data: TelemetryData, settings: TrainSettings) -> TrainedModel:
    """Fit on normal training windows; threshold = 98th percentile of normal validation error; ONNX on test."""
    from training.export_keras import (
        Preprocessor,
        consensus_serving_function,
        export_serving_function,
        threshold_decisions,
    )

    started = time.perf_counter()
    seed_everything(settings.seed)
    windows, labels = node_windows(data)
    x = windows.inputs[:, :, 0]
    split = temporal_split(windows.frame, ("node_id",))[windows.last_rows]
    normal_train = np.flatnonzero((split == TRAIN) & ~labels)
    tr = sample_rows(normal_train, settings.max_train_windows // 2, settings.seed)
    normal_val = np.flatnonzero((split == VALIDATION) & ~labels)
    progress(
        NAME,
        f"{len(x)} windows ({int(labels.sum())} overlap an incident); training on {len(tr)} normal, "
        f"threshold from {len(normal_val)} normal validation windows",
    )
    preprocessor = Preprocessor(log1p_features=(0,)).fit(x[tr][..., None])
    va = sample_rows(normal_val, settings.max_train_windows // 8, settings.seed)
    model, history = _fit(x[tr], x[va], preprocessor, settings)
    provisional = consensus_serving_function(model, preprocessor, threshold=np.inf)
    from training.export_keras import run_native

    val_error = run_native(provisional, x[normal_val].astype(np.float32))["reconstruction_error"]
    threshold = float(np.percentile(val_error, THRESHOLD_PERCENTILE))
    baseline_threshold = float(np.percentile(RollingZScore.score(x[normal_val]), THRESHOLD_PERCENTILE))
    serve = consensus_serving_function(model, preprocessor, threshold=threshold)
    test = np.flatnonzero(split == TEST)
    exported = export_serving_function(
        serve,
        x[test[:2000]].astype(np.float32),
        threshold_decisions("reconstruction_error", "is_high_latency", threshold),
    )
    onnx_bytes = exported.onnx_model.SerializeToString()
    out = run_onnx(onnx_bytes, x[test])
    evaluation = _evaluate(
        labels[test], out, RollingZScore.score(x[test]), baseline_threshold, settings.target_accuracy
    )
    plots: dict[str, str] = {}
    if settings.plots_dir is not None:
        from training import plots as p

        err = out["reconstruction_error"]
        plots["error_histogram"] = p.error_histogram(
            err[~labels[test]], err[labels[test]], threshold, settings.plots_dir / f"{NAME}_error_histogram.png"
        )
        plots["training_curves"] = p.training_curves(
            history, "Consensus autoencoder (MSE)", settings.plots_dir / f"{NAME}_training.png"
        )
    return TrainedModel(
        name=NAME,
        rpc="DetectHighLatency",
        description="LSTM autoencoder 64/32 -> 32/64 over 20 consensus latencies, trained on normal windows.",
        onnx_bytes=onnx_bytes,
        input_name="consensus_latencies_ms",
        input_shape=[None, STEPS],
        features=[CONSENSUS_FEATURE.manifest_entry()],
        outputs=OUTPUTS,
        evaluation=evaluation,
        thresholds={"reconstruction_error": threshold},
        constants={
            "threshold_percentile": THRESHOLD_PERCENTILE,
            "preprocessing": preprocessor.to_manifest(),
            "baseline_zscore_threshold": baseline_threshold,
        },
        parity=exported.parity,
        latency_us=exported.latency_us,
        split_counts=split_counts(split) | windows.counts(),
        history=history,
        plots=plots,
        example_input=x[test][:1],
        train_seconds=time.perf_counter() - started,
    )


def evaluate(onnx_bytes: bytes, manifest: dict, data: TelemetryData) -> Evaluation:
    """Re-evaluate an exported detector on other telemetry (every window is test)."""
    windows, labels = node_windows(data)
    x = windows.inputs[:, :, 0]
    return _evaluate(
        labels,
        run_onnx(onnx_bytes, x),
        RollingZScore.score(x),
        float(manifest["constants"]["baseline_zscore_threshold"]),
        float(manifest["targets"]["accuracy"]["value"]),
    )

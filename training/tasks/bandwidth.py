"""Bandwidth predictor: next-interval throughput of a link from its last 10 samples, with a 90 % interval."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from training.features import MODEL_DATA, Feature, feature_indices, features_from_manifest, frame_with_features
from training.metrics import Evaluation, Target, regression_metrics
from training.splits import TEST, TRAIN, VALIDATION, split_counts, temporal_split
from training.tasks.common import (
    TrainedModel,
    TrainSettings,
    fit_keras,
    progress,
    run_onnx,
    sample_rows,
    seed_everything,
)
from training.validate import TelemetryData
from training.windows import Windows, make_windows, sort_by_group_time

NAME = "bandwidth_predictor"
STEPS = MODEL_DATA[NAME].window_steps
# By feature name: a model trained on a subset of the features finds them at their positions in that subset.
LOG1P_FEATURES = ("rtt_ms", "jitter_ms", "throughput_mbps", "packet_loss_ratio", "congestion_window_segments")
CATEGORIES: dict[str, tuple[int, ...]] = {"link_type": (1, 2, 3, 4), "network_tier": (1, 2, 3)}  # enum codes


def throughput_index(features: tuple[Feature, ...]) -> int:
    """Position of throughput_mbps (a core feature) in the window's last axis."""
    return [f.name for f in features].index("throughput_mbps")


def _categories(features: tuple[Feature, ...]) -> dict[int, tuple[int, ...]]:
    return {j: CATEGORIES[f.name] for j, f in enumerate(features) if f.name in CATEGORIES}


OUTPUTS = [
    {"name": "predicted_throughput_mbps", "dtype": "float32", "unit": "Mbps", "description": "median forecast"},
    {"name": "lower_bound_mbps", "dtype": "float32", "unit": "Mbps", "description": "5th percentile forecast"},
    {"name": "upper_bound_mbps", "dtype": "float32", "unit": "Mbps", "description": "95th percentile forecast"},
    {
        "name": "confidence",
        "dtype": "float32",
        "unit": "score 0-1",
        "description": "1 - (upper - lower) / (2 * predicted), clipped to 0-1",
    },
]


def link_windows(data: TelemetryData, features: tuple[Feature, ...] | None = None) -> tuple[Windows, np.ndarray]:
    """Windows of 10 samples of one link (never across links or gaps) and each target's throughput.

    `features` defaults to the ones chosen for this model at validation (data.features).
    """
    features = features or data.features(NAME)
    frame = sort_by_group_time(frame_with_features(data.metrics, features), ("node_id", "peer_id"))
    names = [f.name for f in features]
    windows = make_windows(frame, ("node_id", "peer_id"), names, STEPS, data.interval_s)
    target = frame["throughput_mbps"].to_numpy(np.float64)[windows.target_rows]
    return windows, target


def _evaluate(windows: np.ndarray, actual: np.ndarray, out: dict[str, np.ndarray], throughput: int) -> Evaluation:
    predicted = out["predicted_throughput_mbps"].astype(np.float64)
    persistence = windows[:, -1, throughput].astype(np.float64)
    moving_average = windows[:, :, throughput].astype(np.float64).mean(axis=1)
    metrics = regression_metrics(actual, predicted)
    inside = (actual >= out["lower_bound_mbps"]) & (actual <= out["upper_bound_mbps"])
    metrics |= {"interval_coverage": float(inside.mean()), "mean_confidence": float(out["confidence"].mean())}
    baselines = {
        "persistence": regression_metrics(actual, persistence),
        "moving_average_10": regression_metrics(actual, moving_average),
    }
    beats = {name: metrics["mae"] < b["mae"] and metrics["mape_pct"] < b["mape_pct"] for name, b in baselines.items()}
    return Evaluation(
        NAME,
        metrics,
        [Target("correlation", ">=", 0.98), Target("mape_pct", "<", 5.0)],
        baselines,
        beats,
        notes=["interval is nominally 90 % (5th to 95th percentile heads)"],
    )


def _fit(
    x: np.ndarray, z: np.ndarray, x_val: np.ndarray, z_val: np.ndarray, preprocessor: Any, settings: TrainSettings
) -> tuple[Any, dict[str, list[float]]]:
    import keras
    import tensorflow as tf

    from training.models import BandwidthArch, bandwidth_model, pinball_loss

    arch = BandwidthArch()
    scaled, scaled_val = preprocessor.apply(tf.constant(x)).numpy(), preprocessor.apply(tf.constant(x_val)).numpy()
    model = bandwidth_model(STEPS, scaled.shape[-1], arch)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=pinball_loss(arch.quantiles))
    return model, fit_keras(NAME, model, scaled, z[:, None], scaled_val, z_val[:, None], settings)


def train(data: TelemetryData, settings: TrainSettings) -> TrainedModel:
    """Windows per link, temporal split, preprocessing fit on train, quantile LSTM, ONNX evaluated on test."""
    from training.export_keras import (
        BANDWIDTH_SCORE_RTOL,
        LogRatioTarget,
        Preprocessor,
        bandwidth_serving_function,
        export_serving_function,
        no_decisions,
    )

    started = time.perf_counter()
    seed_everything(settings.seed)
    features = data.features(NAME)
    throughput = throughput_index(features)
    windows, target = link_windows(data, features)
    split = temporal_split(windows.frame, ("node_id", "peer_id"))[windows.target_rows]
    x = windows.inputs
    tr = sample_rows(np.flatnonzero(split == TRAIN), settings.max_train_windows, settings.seed)
    va = sample_rows(np.flatnonzero(split == VALIDATION), settings.max_train_windows // 4, settings.seed)
    progress(
        NAME,
        f"{len(x)} windows on {', '.join(f.name for f in features)} ({windows.dropped_incomplete} with a "
        f"missing value left out, {windows.gaps.get('windows_dropped_at_gaps', 0)} lost to gaps); "
        f"training on {len(tr)}, validating on {len(va)}",
    )
    preprocessor = Preprocessor(
        log1p_features=feature_indices(features, LOG1P_FEATURES), categories=_categories(features)
    ).fit(x[tr])
    last = x[:, -1, throughput].astype(np.float64)
    log_ratio = LogRatioTarget.fit(last[tr], target[tr])
    model, history = _fit(
        x[tr],
        log_ratio.encode(last[tr], target[tr]),
        x[va],
        log_ratio.encode(last[va], target[va]),
        preprocessor,
        settings,
    )
    serve = bandwidth_serving_function(
        model, preprocessor, log_ratio, n_features=len(features), throughput_feature=throughput
    )
    test = np.flatnonzero(split == TEST)
    exported = export_serving_function(serve, x[test[:2000]], no_decisions, BANDWIDTH_SCORE_RTOL)
    onnx_bytes = exported.onnx_model.SerializeToString()
    out = run_onnx(onnx_bytes, x[test])
    evaluation = _evaluate(x[test], target[test], out, throughput)
    plots: dict[str, str] = {}
    if settings.plots_dir is not None:
        from training import plots as p

        d = settings.plots_dir
        plots["predicted_vs_actual"] = p.predicted_vs_actual(
            target[test], out["predicted_throughput_mbps"], x[test][:, -1, throughput], d / f"{NAME}_pred_vs_actual.png"
        )
        plots["residuals"] = p.residual_histogram(
            target[test], out["predicted_throughput_mbps"], d / f"{NAME}_residuals.png"
        )
        plots["training_curves"] = p.training_curves(
            history, "Bandwidth predictor (pinball loss)", d / f"{NAME}_training.png"
        )
    return TrainedModel(
        name=NAME,
        rpc="PredictBandwidth",
        description="LSTM(64)->LSTM(32)->Dense(16)->3 quantile heads over a link's last 10 samples; next "
        "throughput (Mbps) with a 90 % interval.",
        onnx_bytes=onnx_bytes,
        input_name="link_samples",
        input_shape=[None, STEPS, len(features)],
        features=[f.manifest_entry() for f in features],
        outputs=OUTPUTS,
        evaluation=evaluation,
        constants={
            "interval_level": 0.9,
            "preprocessing": preprocessor.to_manifest(),
            "target": {"kind": "log_ratio_to_last", "mean": log_ratio.mean, "std": log_ratio.std},
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
    """Re-evaluate an exported predictor on other telemetry (every window is test)."""
    features = features_from_manifest(NAME, manifest)
    windows, target = link_windows(data, features)
    return _evaluate(windows.inputs, target, run_onnx(onnx_bytes, windows.inputs), throughput_index(features))

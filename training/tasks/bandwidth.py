"""Bandwidth predictor: next-interval throughput of a link from its last 10 samples, with a 90 % interval.

The forecast is persistence plus a learned, shrunk correction in the window's own volatility units
(training/forecast.py), so it never reverts to the levels of the training data and falls back to "next =
last" where the correction does not help on validation. Throughput history is the only core feature;
the others are optional extra channels.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from training import forecast
from training.features import Feature, features_from_manifest, frame_with_features
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
from training.windows import WindowInputs, Windows, make_windows, sort_by_group_time

NAME = "bandwidth_predictor"
STEPS = 10
CORE_FEATURE = "throughput_mbps"  # the only core feature (training.features.MODEL_DATA)
LOG1P_COLUMNS = ("rtt_ms", "jitter_ms", "packet_loss_ratio", "congestion_window_segments")  # heavy-tailed extras
TREND_SHARE = 0.03  # clean trends and steady levels mixed into the training windows (forecast.trend_windows)
EWMA_ALPHA = 0.5
PREDICT_BATCH = 4096  # Keras batch when predicting the validation windows
PREDICT_CHUNK = 16 * PREDICT_BATCH  # validation windows built at a time (a whole number of batches)
OUTPUTS = [
    {"name": "predicted_throughput_mbps", "dtype": "float32", "unit": "Mbps", "description": "median forecast"},
    {
        "name": "lower_bound_mbps",
        "dtype": "float32",
        "unit": "Mbps",
        "description": "lower end of the 90 % interval (quantile head widened by a conformal margin)",
    },
    {
        "name": "upper_bound_mbps",
        "dtype": "float32",
        "unit": "Mbps",
        "description": "upper end of the 90 % interval (quantile head widened by a conformal margin)",
    },
    {
        "name": "confidence",
        "dtype": "float32",
        "unit": "score 0-1",
        "description": "1 - (upper - lower) / (2 * predicted), clipped to 0-1",
    },
]


def link_windows(data: TelemetryData, features: tuple[Feature, ...]) -> tuple[Windows, np.ndarray, np.ndarray]:
    """Windows of 10 samples of one link (never across links or gaps), each target's throughput, link types."""
    frame = frame_with_features(data.metrics, features)
    if "link_type" in data.metrics and "link_type" not in frame:
        # As a text column, not .to_numpy(): that would make a Python string per row (~60 bytes each).
        frame["link_type"] = data.metrics["link_type"].astype(str)
    frame = sort_by_group_time(frame, ("node_id", "peer_id"))
    windows = make_windows(frame, ("node_id", "peer_id"), [f.name for f in features], STEPS, data.interval_s)
    target = frame[CORE_FEATURE].to_numpy(np.float64)[windows.target_rows]
    has_kinds = "link_type" in frame
    kinds = frame["link_type"].iloc[windows.target_rows].to_numpy() if has_kinds else np.array([], dtype=str)
    return windows, target, kinds


def _throughput(x: np.ndarray, features: tuple[Feature, ...]) -> np.ndarray:
    return x[:, :, [f.name for f in features].index(CORE_FEATURE)].astype(np.float64)


def baseline_forecasts(throughput_mbps: np.ndarray) -> dict[str, np.ndarray]:
    """The naive rules a Go node computes for free, on the same windows."""
    x = np.asarray(throughput_mbps, dtype=np.float64)
    ewma = x[:, 0].copy()
    for k in range(1, x.shape[1]):
        ewma = EWMA_ALPHA * x[:, k] + (1 - EWMA_ALPHA) * ewma
    return {
        "persistence": x[:, -1],
        "moving_average_10": x.mean(axis=1),
        "ewma_0.5": ewma,
        "harmonic_mean_5": 5.0 / np.sum(1.0 / np.maximum(x[:, -5:], 1e-6), axis=1),
    }


def _evaluate(throughput: np.ndarray, actual: np.ndarray, out: dict[str, np.ndarray], kinds: np.ndarray) -> Evaluation:
    predicted = out["predicted_throughput_mbps"].astype(np.float64)
    metrics = regression_metrics(actual, predicted)
    inside = (actual >= out["lower_bound_mbps"]) & (actual <= out["upper_bound_mbps"])
    metrics |= {
        "interval_coverage": float(inside.mean()),
        "mean_confidence": float(out["confidence"].mean()),
        "rows": float(len(actual)),
    }
    for kind in np.unique(kinds) if len(kinds) == len(actual) else []:
        metrics[f"interval_coverage_{kind}"] = float(inside[kinds == kind].mean())
    baselines = {name: regression_metrics(actual, f) for name, f in baseline_forecasts(throughput).items()}
    return Evaluation(
        NAME,
        metrics,
        [Target("correlation", ">=", 0.98), Target("mape_pct", "<", 5.0)],
        baselines,
        {name: metrics["mae"] < b["mae"] for name, b in baselines.items()},
        notes=[
            "primary metric: MAE (Mbps); a baseline is beaten when the model's MAE is lower on the same windows",
            f"interval is nominally {forecast.INTERVAL_LEVEL:.0%}: quantile heads widened by a split-conformal "
            "margin fit on validation",
        ],
    )


def _model_inputs(x: np.ndarray, features: tuple[Feature, ...], extra: Any) -> np.ndarray:
    """What the network sees (the NumPy twin of the graph in export_keras.bandwidth_serving_function)."""
    relative = forecast.relative_window(_throughput(x, features))[..., None].astype(np.float32)
    if extra is None:
        return relative
    import tensorflow as tf

    others = [k for k, f in enumerate(features) if f.name != CORE_FEATURE]
    return np.concatenate([relative, extra.apply(tf.constant(x[:, :, others])).numpy()], axis=-1)


def _extra_preprocessor(features: tuple[Feature, ...], x_train: np.ndarray) -> Any:
    """Scaling of the optional features, fit on training windows; None when throughput is the only one."""
    from training.export_keras import Preprocessor

    others = [f for f in features if f.name != CORE_FEATURE]
    if not others:
        return None
    columns = [k for k, f in enumerate(features) if f.name != CORE_FEATURE]
    log1p = tuple(i for i, f in enumerate(others) if f.name in LOG1P_COLUMNS)
    categories = {i: tuple(sorted(f.categories.values())) for i, f in enumerate(others) if f.categories}
    return Preprocessor(log1p_features=log1p, categories=categories).fit(x_train[:, :, columns])


def _explain_extra(extra: Any, features: tuple[Feature, ...]) -> Any:
    """Likely causes of a parity difference from a raw window: its optional features, as `extra` sees them."""
    others = [k for k, f in enumerate(features) if f.name != CORE_FEATURE]
    causes = extra.explain([features[k].name for k in others])
    return lambda window: causes(np.asarray(window)[..., others])


def _with_trends(x: np.ndarray, z: np.ndarray, features: tuple[Feature, ...], seed: int) -> tuple[Any, Any]:
    """Training windows plus clean trends and steady levels (other features copied from real windows)."""
    rng = np.random.default_rng(seed)
    trend_x, trend_next = forecast.trend_windows(rng, int(len(x) * TREND_SHARE), STEPS)
    donors = x[rng.integers(0, len(x), len(trend_x))].copy()
    donors[:, :, [f.name for f in features].index(CORE_FEATURE)] = trend_x
    return np.concatenate([x, donors]), np.concatenate([z, forecast.encode_target(trend_x, trend_next)])


def _validation_heads(
    model: Any, x: WindowInputs, rows: np.ndarray, features: tuple[Feature, ...], extra: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Throughput history and predicted heads of the windows `rows`, built and predicted PREDICT_CHUNK at a time.

    The chunks are whole batches of the one predict call they replace, so every batch, and every
    prediction, is the same; only one chunk's windows and model inputs are held at a time.
    """
    if not len(rows):
        block = x[rows]
        return _throughput(block, features), model.predict(_model_inputs(block, features, extra), verbose=0)
    throughput, heads = [], []
    for i in range(0, len(rows), PREDICT_CHUNK):
        block = x[rows[i : i + PREDICT_CHUNK]]
        throughput.append(_throughput(block, features))
        heads.append(model.predict(_model_inputs(block, features, extra), batch_size=PREDICT_BATCH, verbose=0))
    return np.concatenate(throughput), np.concatenate(heads)


def train(data: TelemetryData, settings: TrainSettings) -> TrainedModel:
    """Windows per link, temporal split, preprocessing fit on train, quantile LSTM, calibration on validation."""
    import keras

    from training.export_keras import bandwidth_serving_function, export_serving_function, no_decisions
    from training.models import BandwidthArch, bandwidth_model, pinball_loss
    from training.parity import target_scale

    started = time.perf_counter()
    seed_everything(settings.seed)
    features = data.features(NAME)
    windows, target, kinds = link_windows(data, features)
    split = temporal_split(windows.frame, ("node_id", "peer_id"))[windows.target_rows]
    x = windows.inputs
    tr = sample_rows(np.flatnonzero(split == TRAIN), settings.max_train_windows, settings.seed)
    va = np.flatnonzero(split == VALIDATION)
    progress(
        NAME,
        f"{len(x)} windows ({windows.dropped_incomplete} with a missing value left out) of "
        f"{[f.name for f in features]}; training on {len(tr)}, calibrating on {len(va)}",
    )
    extra = _extra_preprocessor(features, x[tr])
    x_fit, z_fit = _with_trends(
        x[tr], forecast.encode_target(_throughput(x[tr], features), target[tr]), features, settings.seed
    )
    fit_va = sample_rows(va, settings.max_train_windows // 4, settings.seed)
    arch = BandwidthArch()
    model = bandwidth_model(STEPS, _model_inputs(x[:1], features, extra).shape[-1], arch)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=pinball_loss(arch.quantiles))
    history = fit_keras(
        NAME,
        model,
        _model_inputs(x_fit, features, extra),
        z_fit[:, None].astype(np.float32),
        _model_inputs(x[fit_va], features, extra),
        forecast.encode_target(_throughput(x[fit_va], features), target[fit_va])[:, None].astype(np.float32),
        settings,
    )
    throughput_va, heads_va = _validation_heads(model, x, va, features, extra)
    calibration = forecast.Calibration.fit(
        heads_va, forecast.encode_target(throughput_va, target[va]), forecast.window_scale(throughput_va)
    )
    progress(NAME, f"calibrated on validation: shrink {calibration.shrink:.2f}, margin {calibration.margin_z:.3f}")
    serve = bandwidth_serving_function(
        model, calibration, [f.name for f in features].index(CORE_FEATURE), extra, STEPS, len(features)
    )
    test = np.flatnonzero(split == TEST)
    x_test = x[test]  # built once: windows.inputs makes the windows it is indexed with
    # Mbps outputs are judged against the spread of the throughput they forecast, not in absolute Mbps.
    mbps = target_scale(target[test[:2000]])
    exported = export_serving_function(
        serve,
        x_test[:2000],
        no_decisions,
        settings.parity_tolerance,
        {o["name"]: mbps for o in OUTPUTS if o["unit"] == "Mbps"},
        explain=None if extra is None else _explain_extra(extra, features),
    )
    onnx_bytes = exported.onnx_model.SerializeToString()
    out = run_onnx(onnx_bytes, x_test)
    throughput_test = _throughput(x_test, features)
    evaluation = _evaluate(throughput_test, target[test], out, kinds[test] if len(kinds) else kinds)
    if extra is not None:
        evaluation.notes += extra.notes([f.name for f in features if f.name != CORE_FEATURE])
    plots: dict[str, str] = {}
    if settings.plots_dir is not None:
        from training import plots as p

        d = settings.plots_dir
        plots["predicted_vs_actual"] = p.predicted_vs_actual(
            target[test], out["predicted_throughput_mbps"], throughput_test[:, -1], d / f"{NAME}_pred_vs_actual.png"
        )
        plots["residuals"] = p.residual_histogram(
            target[test], out["predicted_throughput_mbps"], d / f"{NAME}_residuals.png"
        )
        plots["training_curves"] = p.training_curves(
            history, "Bandwidth predictor (pinball loss)", d / f"{NAME}_training.png"
        )
    constants: dict[str, Any] = {"interval_level": forecast.INTERVAL_LEVEL, "forecast": calibration.to_manifest()}
    if extra is not None:
        constants["preprocessing"] = extra.to_manifest()
    return TrainedModel(
        name=NAME,
        rpc="PredictBandwidth",
        description="LSTM(64)->LSTM(32)->Dense(16)->3 quantile heads over a link's last 10 samples, relative to "
        "the last sample in volatility units; next throughput (Mbps) = persistence + a shrunk correction, with "
        "a conformal 90 % interval.",
        onnx_bytes=onnx_bytes,
        input_name="link_samples",
        input_shape=[None, STEPS, len(features)],
        features=[f.manifest_entry() for f in features],
        outputs=OUTPUTS,
        evaluation=evaluation,
        constants=constants,
        parity=exported.parity,
        parity_check=exported.check,
        latency_us=exported.latency_us,
        split_counts=split_counts(split) | windows.counts(),
        history=history,
        plots=plots,
        example_input=x_test[:1],
        train_seconds=time.perf_counter() - started,
    )


def evaluate(onnx_bytes: bytes, manifest: dict, data: TelemetryData) -> Evaluation:
    """Re-evaluate an exported predictor on other telemetry (every window is test), with its own features."""
    features = features_from_manifest(NAME, manifest)
    windows, target, kinds = link_windows(data, features)
    x = np.asarray(windows.inputs)
    return _evaluate(_throughput(x, features), target, run_onnx(onnx_bytes, x), kinds)

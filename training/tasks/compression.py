"""Compression selector: a dense classifier that learns the measured-zstd oracle's level choice."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from training.compression_oracle import (
    REFERENCE_LEVEL,
    ZstdCurves,
    effective_throughput_mbps,
    oracle_levels,
    throughput_gain,
)
from training.features import Feature, feature_indices, feature_matrix, features_from_manifest
from training.metrics import Evaluation, Target
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

NAME = "compression_selector"
LEVELS = 10
# By feature name, so a model trained on a subset of the features finds them at their positions in it.
LOG1P_FEATURES = ("throughput_mbps", "rtt_ms", "hde_compression_ratio", "amst_transfer_rate_mbps")  # heavy-tailed
CATEGORIES: dict[str, tuple[int, ...]] = {"link_type": (1, 2, 3, 4)}  # enum codes
OUTPUTS = [
    {"name": "level_probabilities", "dtype": "float32", "unit": "probability 0-1", "description": "per level 0-9"},
    {"name": "level", "dtype": "int64", "unit": "level 0-9", "description": "argmax of level_probabilities"},
]


def _dataset(data: TelemetryData, features: tuple[Feature, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and which are complete (missing values are counted, never imputed)."""
    missing = [f.column for f in features if f.column not in data.metrics.columns]
    if missing:
        raise ValueError(f"compression_selector needs the columns {missing}, which the data lacks")
    x = feature_matrix(data.metrics, features)
    return x, np.isfinite(x).all(axis=1)


def oracle_inputs(x: np.ndarray, features: tuple[Feature, ...]) -> dict[str, np.ndarray]:
    """The oracle's inputs (core features: throughput, HDE ratio, delta hit ratio) by name, from feature rows."""
    names = [f.name for f in features]
    return {n: x[:, names.index(n)] for n in ("throughput_mbps", "hde_compression_ratio", "hde_delta_hit_ratio")}


def best_fixed_level(inputs: dict[str, np.ndarray], curves: ZstdCurves) -> int:
    """The one level with the highest mean effective throughput over these (training) rows."""
    return int(np.argmax([effective_throughput_mbps(level, inputs, curves).mean() for level in range(LEVELS)]))


def _evaluate(
    x: np.ndarray,
    levels: np.ndarray,
    curves: ZstdCurves,
    target: float,
    features: tuple[Feature, ...],
    best_fixed: int | None,
) -> Evaluation:
    """Model vs fixed levels on the same rows; `best_fixed` is the best single level on the training rows."""
    inputs = oracle_inputs(x, features)
    oracle = oracle_levels(inputs, curves)
    gain = throughput_gain(levels, inputs, curves)
    metrics = {
        "accuracy_vs_oracle": float((levels == oracle).mean()),
        "within_one_level": float((np.abs(levels - oracle) <= 1).mean()),
    } | gain
    fixed_levels = {"fixed_level_3": REFERENCE_LEVEL, "no_compression": 0}
    if best_fixed is not None:
        fixed_levels[f"best_fixed_level_{best_fixed}"] = best_fixed
    baselines = {}
    for name, level in fixed_levels.items():
        fixed = np.full_like(oracle, level)
        baselines[name] = {"accuracy_vs_oracle": float((fixed == oracle).mean())} | throughput_gain(
            fixed, inputs, curves
        )
    oracle_mbps = float(np.mean(effective_throughput_mbps(oracle, inputs, curves)))
    return Evaluation(
        NAME,
        metrics,
        [Target("accuracy_vs_oracle", ">=", target), Target("gain_vs_level3_pct", ">", 0)],
        baselines,
        primary_metric="model_mean_effective_throughput_mbps",
        notes=[
            "effective throughput = chunk bytes / (compress + transfer + decompress time), "
            "with zstd curves measured on this machine (training/data/zstd_curves.json)",
            "the baselines are compared on mean effective throughput (model_mean_effective_throughput_mbps: "
            "each column's own levels); gain_vs_oracle_pct is each one's gap to the oracle, the ceiling "
            f"(oracle mean effective throughput on these rows: {oracle_mbps:.4g} Mbps)",
            "best_fixed_level_<k>: the single level with the highest mean effective throughput on the training rows",
        ],
    )


def _fit(
    x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, preprocessor: Any, settings: TrainSettings
) -> tuple[Any, dict]:
    import keras
    import tensorflow as tf

    from training.models import CompressionArch, compression_model

    scaled = preprocessor.apply(tf.constant(x)).numpy()
    scaled_val = preprocessor.apply(tf.constant(x_val)).numpy()
    model = compression_model(scaled.shape[-1], CompressionArch())
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # A small model on cheap rows: twice the passes of the sequence models cost about a minute.
    return model, fit_keras(NAME, model, scaled, y, scaled_val, y_val, settings, epochs=2 * settings.epochs)


def train(data: TelemetryData, settings: TrainSettings) -> TrainedModel:
    """Oracle labels from measured zstd curves, temporal split, dense softmax model, ONNX evaluated on test."""
    from training.export_keras import (
        Preprocessor,
        compression_serving_function,
        export_serving_function,
        level_decisions,
    )

    started = time.perf_counter()
    seed_everything(settings.seed)
    curves = ZstdCurves.load()
    features = data.features(NAME)
    x, usable = _dataset(data, features)
    split = np.where(usable, temporal_split(data.metrics, ("node_id", "peer_id")), -1)
    labels = np.zeros(len(x), dtype=np.int64)
    labels[usable] = oracle_levels(oracle_inputs(x[usable], features), curves)
    # a small, fast model: more rows
    tr = sample_rows(np.flatnonzero(split == TRAIN), 4 * settings.max_train_windows, settings.seed)
    va = sample_rows(np.flatnonzero(split == VALIDATION), settings.max_train_windows // 4, settings.seed)
    share = np.bincount(labels[tr], minlength=LEVELS) / max(len(tr), 1)
    progress(
        NAME,
        f"{int(usable.sum())} rows on {', '.join(f.name for f in features)} "
        f"({int((~usable).sum())} with a missing value left out); "
        f"oracle level shares on train: " + " ".join(f"{k}:{s:.2f}" for k, s in enumerate(share)),
    )
    categories = {j: CATEGORIES[f.name] for j, f in enumerate(features) if f.name in CATEGORIES}
    preprocessor = Preprocessor(log1p_features=feature_indices(features, LOG1P_FEATURES), categories=categories)
    preprocessor.fit(x[tr])
    model, history = _fit(x[tr], labels[tr], x[va], labels[va], preprocessor, settings)
    serve = compression_serving_function(model, preprocessor, n_features=len(features))
    test = np.flatnonzero(split == TEST)
    names = [f.name for f in features]
    exported = export_serving_function(
        serve, x[test[:2000]], level_decisions, settings.parity_tolerance, explain=preprocessor.explain(names)
    )
    onnx_bytes = exported.onnx_model.SerializeToString()
    out = run_onnx(onnx_bytes, x[test])
    best_fixed = best_fixed_level(oracle_inputs(x[tr], features), curves)
    evaluation = _evaluate(
        x[test], out["level"].astype(np.int64), curves, settings.target_accuracy, features, best_fixed
    )
    evaluation.notes += preprocessor.notes(names)
    plots: dict[str, str] = {}
    if settings.plots_dir is not None:
        from training import plots as p

        plots["confusion_matrix"] = p.confusion_matrix(
            labels[test], out["level"], [str(k) for k in range(LEVELS)], settings.plots_dir / f"{NAME}_confusion.png"
        )
        plots["training_curves"] = p.training_curves(
            {k: v for k, v in history.items() if "loss" in k},
            "Compression selector (cross-entropy)",
            settings.plots_dir / f"{NAME}_training.png",
        )
    return TrainedModel(
        name=NAME,
        rpc="SelectCompression",
        description="Dense 64/32/16 (dropout) -> softmax over levels 0-9, trained on a measured-zstd oracle.",
        onnx_bytes=onnx_bytes,
        input_name="compression_features",
        input_shape=[None, len(features)],
        features=[f.manifest_entry() for f in features],
        outputs=OUTPUTS,
        evaluation=evaluation,
        constants={
            "preprocessing": preprocessor.to_manifest(),
            "oracle_level_share_train": share.tolist(),
            "baseline_best_fixed_level": best_fixed,
        },
        parity=exported.parity,
        parity_check=exported.check,
        latency_us=exported.latency_us,
        split_counts=split_counts(split) | {"missing_value_rows": int((~usable).sum())},
        history=history,
        plots=plots,
        example_input=x[test][:1],
        train_seconds=time.perf_counter() - started,
    )


def _best_fixed(recorded: object) -> int | None:
    """The manifest's best fixed level (a JSON number; absent in exports that predate it)."""
    return None if recorded is None else int(float(str(recorded)))


def evaluate(onnx_bytes: bytes, manifest: dict, data: TelemetryData) -> Evaluation:
    """Re-evaluate an exported selector on other telemetry (every row is test)."""
    features = features_from_manifest(NAME, manifest)
    x, usable = _dataset(data, features)
    out = run_onnx(onnx_bytes, x[usable])
    return _evaluate(
        x[usable],
        out["level"].astype(np.int64),
        ZstdCurves.load(),
        float(manifest["targets"]["accuracy_vs_oracle"]["value"]),
        features,
        _best_fixed(manifest["constants"].get("baseline_best_fixed_level")),
    )

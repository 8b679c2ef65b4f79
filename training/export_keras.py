"""Export Keras 3 models to ONNX with preprocessing, postprocessing and thresholds inside the graph.

`tf2onnx.convert.from_keras` fails on Keras 3 models, so each model is wrapped in a `tf.function`
with a named input signature (raw values in their units), and `tf2onnx.convert.from_function`
converts the whole function. The same function run in TensorFlow is the native reference for the
parity check, so the check covers the conversion of model, preprocessing and postprocessing alike.
Constants (scaling, thresholds) are NumPy arrays closed over by the function, so they are frozen into
the graph as initialisers rather than becoming extra graph inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

from artifacts.schema import ParityReport
from artifacts.session import ort_session
from training.forecast import ABSOLUTE_FLOOR_MBPS, RELATIVE_FLOOR, Z_LIMIT, Calibration
from training.latency import median_latency_us
from training.parity import DEFAULT_TOLERANCE, Decision, Explain, ParityCheck, Score, check_parity

ONNX_OPSET = 17
MAX_ONNX_BYTES = 10 * 1024 * 1024
# tf2onnx has no Log1p/Expm1 converter: the graphs use log(1 + x) and exp(x) - 1 instead.
_EPS = 1e-6
# A feature whose spread on the training split is below a millionth of its level (or of 1) is constant:
# what varies is float noise, and scaling it to unit variance would turn float32 differences between
# TensorFlow and onnxruntime into large ones.
NEAR_CONSTANT_STD = 1e-6
# A parity row whose feature lies this many training standard deviations away is a likely cause of a difference.
FAR_OUTSIDE_Z = 1e3


@dataclass
class Preprocessor:
    """Per-feature log1p, one-hot of enum features and standard scaling, fit on the training split.

    Works on the last axis of any-rank input; output columns are the numeric features (in input
    order) followed by one one-hot block per categorical feature. A numeric feature constant on the
    training split (NEAR_CONSTANT_STD) gets std 1 and is fed to the network as 0 whatever it receives:
    it told the network nothing in training, so its weights for it are untrained.
    """

    log1p_features: tuple[int, ...] = ()  # heavy-tailed features fed as log1p(max(x, 0))
    categories: dict[int, tuple[int, ...]] = field(default_factory=dict)  # feature -> enum codes
    mean: np.ndarray | None = None  # per numeric feature, after log1p; set by fit()
    std: np.ndarray | None = None  # per numeric feature, 1 for a constant one; set by fit()
    constant_features: tuple[int, ...] = ()  # input columns constant on the training split; set by fit()

    def numeric_features(self, n_features: int) -> list[int]:
        """Input columns that are scaled (not one-hot encoded)."""
        return [j for j in range(n_features) if j not in self.categories]

    def fit(self, train: np.ndarray) -> Preprocessor:
        """Fit mean/std on training rows only (last axis = features); returns self."""
        flat = np.asarray(train, dtype=np.float64).reshape(-1, train.shape[-1])
        numeric = self.numeric_features(flat.shape[1])
        logged = np.where(
            np.isin(numeric, self.log1p_features), np.log1p(np.maximum(flat[:, numeric], 0)), flat[:, numeric]
        )
        mean, std = logged.mean(axis=0), logged.std(axis=0)
        constant = std <= NEAR_CONSTANT_STD * np.maximum(np.abs(mean), 1.0)
        self.mean = mean.astype(np.float32)
        self.std = np.where(constant, 1.0, std).astype(np.float32)
        self.constant_features = tuple(int(j) for j, c in zip(numeric, constant, strict=True) if c)
        return self

    def apply(self, x: tf.Tensor) -> tf.Tensor:
        """TensorFlow preprocessing; used for training inputs and inside the exported graph."""
        if self.mean is None or self.std is None:
            raise ValueError("Preprocessor.apply called before fit()")
        numeric = self.numeric_features(int(x.shape[-1]))
        values = tf.gather(x, numeric, axis=-1)
        log_mask = np.isin(numeric, self.log1p_features)
        if log_mask.any():
            values = tf.where(log_mask, tf.math.log(1.0 + tf.maximum(values, 0.0)), values)
        scaled = (values - self.mean) / self.std
        if self.constant_features:
            scaled = scaled * np.isin(numeric, self.constant_features, invert=True).astype(np.float32)
        parts = [scaled]
        for j, codes in sorted(self.categories.items()):
            codes_f32 = np.asarray(codes, dtype=np.float32)
            parts.append(tf.cast(tf.equal(x[..., j : j + 1], codes_f32), tf.float32))
        return tf.concat(parts, axis=-1) if len(parts) > 1 else parts[0]

    def to_manifest(self) -> dict[str, Any]:
        """Constants for manifest.json (`constants.preprocessing`)."""
        return {
            "log1p_features": list(self.log1p_features),
            "categories": {str(j): list(c) for j, c in sorted(self.categories.items())},
            "mean": [] if self.mean is None else self.mean.tolist(),
            "std": [] if self.std is None else self.std.tolist(),
            "constant_features": list(self.constant_features),
        }

    def explain(self, names: list[str]) -> Callable[[np.ndarray], list[str]]:
        """Likely causes of a parity difference on one raw input row (last axis = features named `names`):
        its features far outside the training range, then the features constant on the training split."""
        if self.mean is None or self.std is None:
            raise ValueError("Preprocessor.explain called before fit()")
        numeric = self.numeric_features(len(names))
        mean, std = self.mean.astype(np.float64), self.std.astype(np.float64)
        log_mask = np.isin(numeric, self.log1p_features)

        def causes(row: np.ndarray) -> list[str]:
            values = np.asarray(row, dtype=np.float64).reshape(-1, len(names))[:, numeric]
            values = np.where(log_mask, np.log1p(np.maximum(values, 0.0)), values)
            z = np.max(np.abs(values - mean) / std, axis=0)
            found = [
                f"feature {names[j]} on that row is {z[k]:.3g} training standard deviations from its training mean"
                for k, j in enumerate(numeric)
                if z[k] > FAR_OUTSIDE_Z and j not in self.constant_features
            ]
            return found + [
                f"feature {names[j]} is constant on the training split (the graph feeds it to the network as 0)"
                for j in self.constant_features
            ]

        return causes

    def notes(self, names: list[str]) -> list[str]:
        """Report lines for the features this preprocessing treats specially."""
        return [
            f"feature {names[j]} is constant on the training split: scaled with std 1 and fed to the network as 0"
            for j in self.constant_features
        ]


def convert_function(function: Any) -> onnx.ModelProto:
    """Convert a `tf.function` with an input_signature to ONNX; refuse models over 10 MB."""
    model, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=ONNX_OPSET)
    if model.ByteSize() > MAX_ONNX_BYTES:
        raise ValueError(f"ONNX model is {model.ByteSize()} bytes, over the {MAX_ONNX_BYTES}-byte limit")
    return model


def run_native(function: Any, x: np.ndarray, batch_rows: int = 4096) -> dict[str, np.ndarray]:
    """Run the serving function in TensorFlow, in batches, returning NumPy outputs by name."""
    parts: list[dict[str, Any]] = [function(tf.constant(x[i : i + batch_rows])) for i in range(0, len(x), batch_rows)]
    return {name: np.concatenate([p[name].numpy() for p in parts]) for name in parts[0]}


def run_onnx(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the exported graph in onnxruntime, returning outputs by name."""
    session = ort_session(model.SerializeToString())
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: x}), strict=True))


def onnx_latency_us(model: onnx.ModelProto, example_row: np.ndarray, batch_rows: int = 1) -> float:
    """Median onnxruntime latency of one call on `batch_rows` copies of a row (1 thread), microseconds."""
    session = ort_session(model.SerializeToString())
    feed = {session.get_inputs()[0].name: np.repeat(example_row[None], batch_rows, axis=0).astype(np.float32)}
    return median_latency_us(session, feed)


def _signature(name: str, row_shape: tuple[int, ...]) -> list[tf.TensorSpec]:
    return [tf.TensorSpec([None, *row_shape], tf.float32, name=name)]


# (native outputs, ONNX outputs, tolerance) -> the decisions to compare, with their tie rows marked.
DecisionSpec = Callable[[dict[str, np.ndarray], dict[str, np.ndarray], float], list[Decision]]
Scales = dict[str, tuple[float, str]]  # output name -> (its scale, what that scale is); absent: 1, a 0-1 score


@dataclass(frozen=True)
class KerasExport:
    """An exported graph with its parity check and onnxruntime latency figures."""

    onnx_model: onnx.ModelProto
    check: ParityCheck
    latency_us: dict[str, float]  # "single_row" and "batch_64": median per call, 1 intra-op thread

    @property
    def parity(self) -> ParityReport:
        """The manifest's parity figures."""
        return self.check.report


def check_serving_parity(
    model: onnx.ModelProto,
    serve: Any,
    x: np.ndarray,
    decisions: DecisionSpec,
    tolerance: float = DEFAULT_TOLERANCE,
    scales: Scales | None = None,
    explain: Callable[[np.ndarray], list[str]] | None = None,
) -> ParityCheck:
    """ONNX (onnxruntime) vs the serving function in TensorFlow on `x` (training.parity.check_parity).

    A float output may differ by `tolerance` x its scale (`scales`, default 1 for a 0-1 score); decision
    outputs must be identical except float ties at a boundary, which the DecisionSpec marks. `explain`
    names likely causes from a failing row's raw input.
    """
    x = np.asarray(x, dtype=np.float32)
    native, got = run_native(serve, x), run_onnx(model, x)
    scales = scales or {}
    scores = [
        Score(n, v, got[n], *scales.get(n, (1.0, "a 0-1 score")))
        for n, v in native.items()
        if np.issubdtype(v.dtype, np.floating)
    ]
    by_row: Explain | None = (lambda row: explain(x[row])) if explain else None
    return check_parity(scores, decisions(native, got, tolerance), tolerance, by_row)


def export_serving_function(
    serve: Any,
    x_parity: np.ndarray,
    decisions: DecisionSpec,
    tolerance: float = DEFAULT_TOLERANCE,
    scales: Scales | None = None,
    explain: Callable[[np.ndarray], list[str]] | None = None,
    measure_latency: bool = True,
) -> KerasExport:
    """Convert `serve` to ONNX, check parity on `x_parity` and time it.

    A parity failure does not raise: it is in `check.failure`, and the graph is returned all the same so
    the caller can evaluate it and write it where the failure message says.
    """
    model = convert_function(serve)
    check = check_serving_parity(model, serve, x_parity, decisions, tolerance, scales, explain)
    latency: dict[str, float] = {}
    if measure_latency:
        row = np.asarray(x_parity[0], dtype=np.float32)
        latency = {"single_row": onnx_latency_us(model, row), "batch_64": onnx_latency_us(model, row, 64)}
    return KerasExport(model, check, latency)


def bandwidth_serving_function(
    model: keras.Model,
    calibration: Calibration,
    throughput_feature: int,
    extra: Preprocessor | None,
    window_steps: int,
    n_features: int,
) -> Any:
    """link_samples [N,T,F] -> predicted/lower/upper throughput (Mbps) and confidence 0-1 (training.forecast).

    The network sees the throughput window relative to its last sample in volatility units, plus the
    other features through `extra` (None: throughput is the only feature); it outputs 3 quantile heads.
    """
    if model.output_shape[-1] != 3:
        raise ValueError(
            f"the bandwidth model must output 3 columns (lower, median, upper quantiles), not {model.output_shape[-1]}"
        )
    j = throughput_feature
    others = [k for k in range(n_features) if k != j]

    @tf.function(input_signature=_signature("link_samples", (window_steps, n_features)))
    def serve(link_samples: tf.Tensor) -> dict[str, tf.Tensor]:
        x = link_samples[:, :, j]
        last = x[:, -1]
        scale = (
            tf.reduce_mean(tf.abs(x[:, 1:] - x[:, :-1]), axis=1)
            + np.float32(RELATIVE_FLOOR) * tf.reduce_mean(tf.abs(x), axis=1)
            + np.float32(ABSOLUTE_FLOOR_MBPS)
        )
        parts = [((x - last[:, None]) / scale[:, None])[..., None]]
        if extra is not None:
            parts.append(extra.apply(tf.gather(link_samples, others, axis=-1)))
        z = tf.clip_by_value(model(tf.concat(parts, axis=-1), training=False), -Z_LIMIT, Z_LIMIT)
        z = tf.sort(z, axis=-1)  # quantile heads may cross
        predicted = tf.maximum(last + np.float32(calibration.shrink) * scale * z[:, 1], 0.0)
        steps = x[:, 1:] - x[:, :-1]  # training.forecast.hold_trend: a clean trend does not turn back
        predicted = tf.where(tf.reduce_all(steps > 0.0, axis=1), tf.maximum(predicted, last), predicted)
        predicted = tf.where(tf.reduce_all(steps < 0.0, axis=1), tf.minimum(predicted, last), predicted)
        margin = np.float32(calibration.margin_z)
        lower = tf.minimum(tf.maximum(last + scale * (z[:, 0] - margin), 0.0), predicted)
        upper = tf.maximum(last + scale * (z[:, 2] + margin), predicted)
        width_ratio = (upper - lower) / (2.0 * tf.maximum(predicted, _EPS))
        return {
            "predicted_throughput_mbps": predicted,
            "lower_bound_mbps": lower,
            "upper_bound_mbps": upper,
            "confidence": tf.clip_by_value(1.0 - width_ratio, 0.0, 1.0),
        }

    return serve


def compression_serving_function(model: keras.Model, preprocessor: Preprocessor, n_features: int = 6) -> Any:
    """compression_features [N,6] -> level_probabilities [N,10], level [N] int64 (argmax)."""

    @tf.function(input_signature=_signature("compression_features", (n_features,)))
    def serve(compression_features: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = model(preprocessor.apply(compression_features), training=False)
        return {"level_probabilities": probabilities, "level": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}

    return serve


def _median_of_last_axis(values: tf.Tensor, steps: int) -> tf.Tensor:
    """Median over the last axis of fixed length `steps` (mean of the two middle values when even)."""
    ordered = tf.math.top_k(values, k=steps, sorted=True).values  # descending
    return 0.5 * (ordered[:, (steps - 1) // 2] + ordered[:, steps // 2])


# The arrival z-scores divide by the spread of the latencies before the newest ones; below this (log units,
# a 0.1 % change) a history is steady at float32 precision, and dividing by its float noise would make z noise.
ARRIVAL_Z_MIN_STD = 1e-3


def _z_above(values: tf.Tensor, history: tf.Tensor) -> tf.Tensor:
    """[N] how far `values` [N] lie above the mean of `history` [N, k], in its standard deviations."""
    mean = tf.reduce_mean(history, axis=1)
    std = tf.sqrt(tf.reduce_mean(tf.square(history - mean[:, None]), axis=1))
    return (values - mean) / tf.maximum(std, np.float32(ARRIVAL_Z_MIN_STD))


def consensus_serving_function(
    model: keras.Model,
    shape_floor: float,
    thresholds: dict[str, float],
    window_steps: int = 20,
) -> Any:
    """consensus_latencies_ms [N,20] -> reconstruction_error, newest_z, held_z, level_ms, peak_ms,
    is_high_latency [N].

    The window's level is its median (ms), its peak its highest latency. The autoencoder sees the window's
    shape only: log(1 + x) minus log(1 + level), over the window's own spread (1.4826 x the median absolute
    deviation of the logs), floored at `shape_floor` (the typical spread of normal training windows). A
    steady window is all zeros at any level, and a series noisier than the training data is judged against
    its own noise. newest_z: how far the newest log latency lies above the mean of the 19 before it, in their
    standard deviations (the online z-score rule's statistic, signed: a fall is negative); held_z: the same
    for the lower of the two newest against the 18 before them (a rise that held for two samples).

    `thresholds` (manifest thresholds, one per figure) give the flag: the window is high by level
    (level_ms or peak_ms above its threshold), by a rise that held (held_z above its threshold), or by a
    rise the autoencoder confirms (newest_z above its threshold and reconstruction_error above its own).
    Rises are judged at the newest samples, so a step is flagged as it arrives, not in every window that
    holds it, and a fall never is.
    """
    steps = window_steps
    t = {name: np.float32(value) for name, value in thresholds.items()}

    @tf.function(input_signature=_signature("consensus_latencies_ms", (steps,)))
    def serve(consensus_latencies_ms: tf.Tensor) -> dict[str, tf.Tensor]:
        ms = tf.maximum(consensus_latencies_ms, 0.0)
        level_ms = _median_of_last_axis(ms, steps)
        peak_ms = tf.reduce_max(ms, axis=1)
        logged = tf.math.log(1.0 + ms)
        centred = logged - tf.math.log(1.0 + level_ms)[:, None]
        spread = 1.4826 * _median_of_last_axis(tf.abs(centred), steps)
        shape = (centred / tf.maximum(spread, np.float32(shape_floor))[:, None])[..., None]
        error = tf.reduce_mean(tf.square(model(shape, training=False) - shape), axis=[1, 2])
        newest_z = _z_above(logged[:, -1], logged[:, :-1])
        held_z = _z_above(tf.minimum(logged[:, -1], logged[:, -2]), logged[:, :-2])
        high = tf.logical_or(level_ms > t["level_ms"], peak_ms > t["peak_ms"])
        high = tf.logical_or(high, held_z > t["held_z"])
        high = tf.logical_or(high, tf.logical_and(newest_z > t["newest_z"], error > t["reconstruction_error"]))
        return {
            "reconstruction_error": error,
            "newest_z": newest_z,
            "held_z": held_z,
            "level_ms": level_ms,
            "peak_ms": peak_ms,
            "is_high_latency": high,
        }

    return serve


def level_decisions(native: dict[str, np.ndarray], got: dict[str, np.ndarray], tolerance: float) -> list[Decision]:
    """`level` must match wherever the native top-2 probabilities are more than 2 x tolerance apart
    (each may move by the tolerance)."""
    top2 = np.sort(native["level_probabilities"], axis=-1)[:, -2:]
    return [Decision("level", native["level"], got["level"], tie=(top2[:, 1] - top2[:, 0]) <= 2 * tolerance)]


def threshold_decisions(score: str, flag: str, threshold: float) -> DecisionSpec:
    """`flag` must match wherever the native score is not within tolerance x |threshold| of the threshold."""

    def decisions(native: dict[str, np.ndarray], got: dict[str, np.ndarray], tolerance: float) -> list[Decision]:
        band = tolerance * max(abs(threshold), _EPS)
        return [Decision(flag, native[flag], got[flag], tie=np.abs(native[score] - threshold) <= band)]

    return decisions


def no_decisions(native: dict[str, np.ndarray], got: dict[str, np.ndarray], tolerance: float) -> list[Decision]:
    """For models whose outputs are all scores (bandwidth)."""
    return []

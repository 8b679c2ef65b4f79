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

from training.manifest import Decision, ParityReport, check_parity, median_latency_us, ort_session

ONNX_OPSET = 17
SCORE_ATOL = 1e-4
MAX_ONNX_BYTES = 10 * 1024 * 1024
_EPS = 1e-6


@dataclass
class Preprocessor:
    """Per-feature log1p, one-hot of enum features and standard scaling, fit on the training split.

    Works on the last axis of any-rank input; output columns are the numeric features (in input
    order) followed by one one-hot block per categorical feature.
    """

    log1p_features: tuple[int, ...] = ()  # heavy-tailed features fed as log1p(max(x, 0))
    categories: dict[int, tuple[int, ...]] = field(default_factory=dict)  # feature -> enum codes
    mean: np.ndarray | None = None  # per numeric feature, after log1p; set by fit()
    std: np.ndarray | None = None  # per numeric feature, floored at 1e-6; set by fit()

    def numeric_features(self, n_features: int) -> list[int]:
        """Input columns that are scaled (not one-hot encoded)."""
        return [j for j in range(n_features) if j not in self.categories]

    def fit(self, train: np.ndarray) -> Preprocessor:
        """Fit mean/std on training rows only (last axis = features); returns self."""
        flat = np.asarray(train, dtype=np.float64).reshape(-1, train.shape[-1])
        numeric = self.numeric_features(flat.shape[1])
        logged = np.where(np.isin(numeric, self.log1p_features), np.log1p(np.maximum(flat[:, numeric], 0)), flat[:, numeric])
        self.mean = logged.mean(axis=0).astype(np.float32)
        self.std = np.maximum(logged.std(axis=0), _EPS).astype(np.float32)
        return self

    def apply(self, x: tf.Tensor) -> tf.Tensor:
        """TensorFlow preprocessing; used for training inputs and inside the exported graph."""
        if self.mean is None or self.std is None:
            raise ValueError("Preprocessor.apply called before fit()")
        numeric = self.numeric_features(int(x.shape[-1]))
        values = tf.gather(x, numeric, axis=-1)
        log_mask = np.isin(numeric, self.log1p_features)
        if log_mask.any():
            values = tf.where(log_mask, tf.math.log1p(tf.maximum(values, 0.0)), values)
        parts = [(values - self.mean) / self.std]
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
        }


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


SpecFactory = Callable[[dict[str, np.ndarray]], list[Decision]]

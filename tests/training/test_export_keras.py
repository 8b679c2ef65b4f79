"""Tests for the Keras -> ONNX export: in-graph preprocessing, output contract and parity checks."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from training.export_keras import (  # noqa: E402
    Preprocessor,
    bandwidth_serving_function,
    check_serving_parity,
    compression_serving_function,
    consensus_serving_function,
    convert_function,
    export_serving_function,
    level_decisions,
    no_decisions,
    run_onnx,
    threshold_decisions,
)
from training.forecast import Calibration  # noqa: E402
from training.parity import ParityError, target_scale  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(1)
L = keras.layers
RNG = np.random.default_rng(0)


def _link_samples(rows: int) -> np.ndarray:
    x = np.empty((rows, 10, 7), np.float32)
    x[..., 0] = RNG.lognormal(3, 1, (rows, 10))  # rtt_ms
    x[..., 1] = RNG.lognormal(0, 1, (rows, 10))  # jitter_ms
    x[..., 2] = RNG.lognormal(6, 1, (rows, 10))  # throughput_mbps
    x[..., 3] = RNG.random((rows, 10)) * 0.05  # packet_loss_ratio
    x[..., 4] = RNG.integers(1, 5, (rows, 1))  # link_type
    x[..., 5] = RNG.integers(1, 4, (rows, 1))  # network_tier
    x[..., 6] = RNG.lognormal(5, 1, (rows, 10))  # congestion_window_segments
    return x


LINK_PREPROCESSOR = Preprocessor(log1p_features=(0, 1, 2, 6), categories={4: (1, 2, 3, 4), 5: (1, 2, 3)})


OTHERS = [0, 1, 3, 4, 5, 6]  # the features beside throughput (column 2)
EXTRA = Preprocessor(log1p_features=(0, 1, 2, 5), categories={3: (1, 2, 3, 4), 4: (1, 2, 3)})


def _bandwidth(outputs: int, with_extra: bool = True) -> tuple[keras.Model, Any, np.ndarray]:
    x = _link_samples(64)
    extra = Preprocessor(EXTRA.log1p_features, EXTRA.categories).fit(x[:, :, OTHERS]) if with_extra else None
    inputs = keras.Input((10, 1 + (4 + 4 + 3 if with_extra else 0)))
    h = L.LSTM(4)(L.LSTM(4, return_sequences=True)(inputs))
    model = keras.Model(inputs, L.Dense(outputs)(L.Dense(4, activation="relu")(h)))
    return model, extra, x  # untrained: the export, not the fit, is under test


def _serve(model: keras.Model, extra: Any, calibration: Calibration | None = None) -> Any:
    return bandwidth_serving_function(model, calibration or Calibration(0.5, 0.1), 2, extra, 10, 7)


@pytest.mark.parametrize("with_extra", [True, False])
def test_bandwidth_quantile_export_has_contract_outputs_and_parity(with_extra: bool) -> None:
    model, extra, x = _bandwidth(outputs=3, with_extra=with_extra)
    mbps = target_scale(x[:, -1, 2])
    scales = {n: mbps for n in ("predicted_throughput_mbps", "lower_bound_mbps", "upper_bound_mbps")}
    result = export_serving_function(_serve(model, extra), x, no_decisions, scales=scales)
    assert result.check.passed, result.check.failure
    graph = result.onnx_model.graph
    assert [i.name for i in graph.input] == ["link_samples"]  # scaling constants are frozen, not inputs
    out = run_onnx(result.onnx_model, x)
    assert set(out) == {"predicted_throughput_mbps", "lower_bound_mbps", "upper_bound_mbps", "confidence"}
    assert all(v.shape == (len(x),) and v.dtype == np.float32 for v in out.values())
    assert (out["lower_bound_mbps"] <= out["predicted_throughput_mbps"] + 1e-3).all()
    assert (out["predicted_throughput_mbps"] <= out["upper_bound_mbps"] + 1e-3).all()
    assert ((out["confidence"] >= 0) & (out["confidence"] <= 1)).all()
    assert result.parity.rows == len(x) and result.latency_us["single_row"] > 0
    assert result.onnx_model.ByteSize() < 10 * 1024 * 1024


def test_bandwidth_graph_matches_the_numpy_forecast() -> None:
    from training.forecast import relative_window

    model, extra, x = _bandwidth(outputs=3, with_extra=False)
    calibration = Calibration(0.7, 0.25)
    x[:4, :, 2] = np.linspace(10, 100, 10)  # clean trends both ways: the graph holds them as the NumPy twin does
    x[4:8, :, 2] = np.linspace(100, 10, 10)
    out = run_onnx(convert_function(_serve(model, extra, calibration)), x)
    throughput = x[:, :, 2].astype(np.float64)
    heads = model(relative_window(throughput)[..., None].astype(np.float32), training=False).numpy()
    expected = calibration.decode(throughput, heads)
    for name, values in expected.items():
        np.testing.assert_allclose(out[name], values, rtol=1e-4, atol=1e-3)


def test_bandwidth_with_no_shrink_is_persistence() -> None:
    model, extra, x = _bandwidth(outputs=3)
    out = run_onnx(convert_function(_serve(model, extra, Calibration(0.0, 0.1))), x)
    np.testing.assert_allclose(out["predicted_throughput_mbps"], x[:, -1, 2], rtol=1e-6)


def test_bandwidth_model_without_quantile_heads_is_refused() -> None:
    model, extra, _x = _bandwidth(outputs=1)
    with pytest.raises(ValueError, match="must output 3 columns"):
        _serve(model, extra)


def _compression() -> tuple[keras.Model, Preprocessor, np.ndarray]:
    x = (RNG.random((128, 6)) * [1000, 100, 3, 10, 1, 1000] + [0, 0, 1, 1, 0, 0]).astype(np.float32)
    x[:, 2] = np.round(x[:, 2])
    pre = Preprocessor(log1p_features=(0, 1, 5), categories={2: (1, 2, 3, 4)}).fit(x)
    inputs = keras.Input((9,))
    h = L.Dropout(0.2)(L.Dense(8, activation="relu")(inputs))
    model = keras.Model(inputs, L.Dense(10, activation="softmax")(L.Dense(4, activation="relu")(h)))
    return model, pre, x


def test_compression_export_argmax_level_in_graph() -> None:
    model, pre, x = _compression()
    result = export_serving_function(
        compression_serving_function(model, pre), x, level_decisions, measure_latency=False
    )
    out = run_onnx(result.onnx_model, x)
    assert out["level_probabilities"].shape == (len(x), 10)
    assert out["level"].dtype == np.int64
    np.testing.assert_array_equal(out["level"], out["level_probabilities"].argmax(-1))
    np.testing.assert_allclose(out["level_probabilities"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(  # dropout is inactive in the served graph
        out["level_probabilities"], model(pre.apply(tf.constant(x)), training=False).numpy(), atol=1e-5
    )


SHAPE_FLOOR = 0.3
LEVEL_MS = 200.0
NEVER = dict.fromkeys(("reconstruction_error", "newest_z", "held_z", "level_ms", "peak_ms"), np.inf)


def _thresholds(**changed: float) -> dict[str, float]:
    """Every consensus threshold at infinity (the rule never fires) but those given."""
    return NEVER | changed


def _autoencoder() -> tuple[keras.Model, np.ndarray]:
    x = RNG.lognormal(3, 0.5, (64, 20)).astype(np.float32)
    inputs = keras.Input((20, 1))
    h = L.RepeatVector(20)(L.LSTM(3)(L.LSTM(4, return_sequences=True)(inputs)))
    h = L.LSTM(4, return_sequences=True)(L.LSTM(3, return_sequences=True)(h))
    model = keras.Model(inputs, L.TimeDistributed(L.Dense(1))(h))
    return model, x


def _z_above(values: np.ndarray, history: np.ndarray) -> np.ndarray:
    return (values - history.mean(axis=1)) / np.maximum(history.std(axis=1), 1e-3)


def test_consensus_export_scores_shape_rises_and_level_and_flags_by_them() -> None:
    model, x = _autoencoder()
    x[:8] = np.linspace(100, 400, 8, dtype=np.float32)[:, None]  # steady windows, some above the level threshold
    x[8, -1] *= 30  # a spike arriving; a fall; a step that held two samples
    x[9, -1] /= 30
    x[10, -2:] *= 5
    thresholds = _thresholds(reconstruction_error=0.9, newest_z=3.0, held_z=2.5, level_ms=LEVEL_MS, peak_ms=600.0)
    serve = consensus_serving_function(model, SHAPE_FLOOR, thresholds)
    result = export_serving_function(serve, x, no_decisions, measure_latency=False)
    out = run_onnx(result.onnx_model, x)
    level = np.median(x, axis=1)
    centred = np.log1p(x) - np.log1p(level)[:, None]
    spread = np.maximum(1.4826 * np.median(np.abs(centred), axis=1), SHAPE_FLOOR)  # the window's own, floored
    shape = (centred / spread[:, None])[..., None].astype(np.float32)
    expected = ((model(shape, training=False).numpy() - shape) ** 2).mean(axis=(1, 2))
    logged = np.log1p(x.astype(np.float64))
    newest_z = _z_above(logged[:, -1], logged[:, :-1])
    held_z = _z_above(np.minimum(logged[:, -1], logged[:, -2]), logged[:, :-2])
    np.testing.assert_allclose(out["level_ms"], level, rtol=1e-6)
    np.testing.assert_allclose(out["peak_ms"], x.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(out["reconstruction_error"], expected, atol=1e-4)
    np.testing.assert_allclose(out["newest_z"], newest_z, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(out["held_z"], held_z, rtol=1e-4, atol=1e-3)
    assert out["newest_z"][8] > 3.0 and out["newest_z"][9] < -3.0 and out["held_z"][10] > 2.5
    flag = (out["level_ms"] > LEVEL_MS) | (out["peak_ms"] > 600.0) | (out["held_z"] > 2.5)
    flag |= (out["newest_z"] > 3.0) & (out["reconstruction_error"] > 0.9)
    np.testing.assert_array_equal(out["is_high_latency"], flag)
    # Steady windows have the same (all-zero) shape, so the same error at every level, and no rise.
    np.testing.assert_allclose(out["reconstruction_error"][:8], out["reconstruction_error"][0], atol=1e-6)
    np.testing.assert_allclose(out["newest_z"][:8], 0.0, atol=1e-2)
    assert out["is_high_latency"].dtype == np.bool_


def test_each_consensus_rule_flags_on_its_own() -> None:
    model, x = _autoencoder()
    x[0] = 50.0
    x[0, -1] = 1500.0  # a spike: peak, newest_z and a large error
    x[1] = 50.0
    x[1, -2:] = 150.0  # a step that held
    x[2] = 300.0  # steady above the level threshold
    rows = x[:3]
    only = {
        "level_ms": [False, False, True],
        "peak_ms": [True, False, True],
        "held_z": [False, True, False],
    }
    for name, expected in only.items():
        serve = consensus_serving_function(model, SHAPE_FLOOR, _thresholds(**{name: 250.0 if "ms" in name else 3.0}))
        np.testing.assert_array_equal(run_onnx(convert_function(serve), rows)["is_high_latency"], expected, name)
    # The confirmed rise needs both: the newest latency rose and the error is high.
    for changed, expected in (
        ({"newest_z": 3.0}, [False, False, False]),
        ({"reconstruction_error": 0.0}, [False, False, False]),
        ({"newest_z": 3.0, "reconstruction_error": 0.0}, [True, True, False]),
    ):
        serve = consensus_serving_function(model, SHAPE_FLOOR, _thresholds(**changed))
        np.testing.assert_array_equal(run_onnx(convert_function(serve), rows)["is_high_latency"], expected, changed)


def test_parity_check_fails_on_a_different_threshold_or_model() -> None:
    model, x = _autoencoder()
    exported = convert_function(consensus_serving_function(model, SHAPE_FLOOR, _thresholds(held_z=-np.inf)))
    held = float(np.median(run_onnx(exported, x)["held_z"]))  # half the rows flip
    check = check_serving_parity(
        exported,
        consensus_serving_function(model, SHAPE_FLOOR, _thresholds(held_z=held)),
        x,
        threshold_decisions("held_z", "is_high_latency", held),
    )
    assert "output 'is_high_latency'" in check.failure and not check.report.decisions_identical
    with pytest.raises(ParityError, match="is_high_latency"):
        check.raise_for_failure()
    other, _ = _autoencoder()
    check = check_serving_parity(exported, consensus_serving_function(other, SHAPE_FLOOR, NEVER), x, no_decisions)
    assert "output 'reconstruction_error'" in check.failure


def test_default_autoencoder_exports_its_output_layer_as_one_matmul() -> None:
    # Keras 3 unrolls TimeDistributed into a slice + matmul per step (20 of each); the default decoder's output
    # layer must stay one op over all steps, or the served graph doubles and its latency grows by a third.
    from training.models import ConsensusArch, consensus_autoencoder

    thresholds = _thresholds(reconstruction_error=1.0, newest_z=3.0, held_z=2.5, level_ms=LEVEL_MS, peak_ms=LEVEL_MS)
    serve = consensus_serving_function(consensus_autoencoder(20, ConsensusArch()), SHAPE_FLOOR, thresholds)
    graph = convert_function(serve).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("LSTM") == 4
    assert ops.count("MatMul") + ops.count("Gemm") <= 2, ops


def test_a_constant_training_feature_gets_a_neutral_scale_and_is_ignored_by_the_graph() -> None:
    """With std floored at 1e-6, a feature constant in training but not at serving moved the output by 1e6
    standard deviations, and float32 differences with it; it told the network nothing, so it is fed as 0."""
    model, _, x = _compression()
    x[:, 1] = 40.0  # rtt_ms: an operator's trace without RTT, filled with one value
    pre = Preprocessor(log1p_features=(0, 1, 5), categories={2: (1, 2, 3, 4)}).fit(x)
    assert pre.constant_features == (1,) and pre.std is not None and pre.std[1] == 1.0
    assert pre.to_manifest()["constant_features"] == [1]
    served = x.copy()
    served[:, 1] = RNG.lognormal(3, 1, len(x))  # at serving time the column varies
    result = export_serving_function(
        compression_serving_function(model, pre),
        served,
        level_decisions,
        explain=pre.explain(NAMES),
        measure_latency=False,
    )
    assert result.check.passed, result.check.failure
    out, baseline = run_onnx(result.onnx_model, served), run_onnx(result.onnx_model, x)
    np.testing.assert_allclose(out["level_probabilities"], baseline["level_probabilities"], atol=1e-6)
    assert pre.notes(NAMES) == [
        "feature rtt_ms is constant on the training split: scaled with std 1 and fed to the network as 0"
    ]


def test_explain_names_a_feature_far_outside_its_training_range() -> None:
    _, pre, x = _compression()
    row = x[0].copy()
    row[3] = 1e9  # hde_compression_ratio, not log-scaled: millions of training standard deviations away
    (cause,) = pre.explain(NAMES)(row)
    assert cause.startswith("feature hde_compression_ratio on that row is") and "training standard deviations" in cause
    assert pre.explain(NAMES)(x[0]) == []


NAMES = ["throughput_mbps", "rtt_ms", "link_type", "hde_compression_ratio", "hde_delta_hit_ratio", "amst_mbps"]

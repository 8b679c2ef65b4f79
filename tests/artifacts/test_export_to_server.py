"""Round trip: each kind of model exported by training's real exporters loads in the server's real loader."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402
from sklearn.ensemble import IsolationForest  # noqa: E402

from artifacts.session import ort_session  # noqa: E402
from server.metrics import Metrics  # noqa: E402
from server.runtime import load_version  # noqa: E402
from server.store import ModelStore  # noqa: E402
from training import forecast  # noqa: E402
from training import models as arch  # noqa: E402
from training.export_forest import ForestPreprocessing, check_forest_parity, forest_to_onnx  # noqa: E402
from training.export_keras import (  # noqa: E402
    Preprocessor,
    bandwidth_serving_function,
    compression_serving_function,
    consensus_serving_function,
    export_serving_function,
    level_decisions,
    no_decisions,
)
from training.features import (  # noqa: E402
    COMPRESSION_FEATURES,
    CONSENSUS_FEATURE,
    RELIABILITY_FEATURES,
    feature_indices,
    select_features,
)
from training.metrics import Evaluation, Target  # noqa: E402
from training.parity import target_scale  # noqa: E402
from training.publish import publish  # noqa: E402
from training.tasks import bandwidth, compression, consensus, reliability  # noqa: E402
from training.tasks.common import TrainedModel  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(1)
CREATED = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
TRAINING_DATA = {
    "fingerprint": "0" * 64,
    "rows": 64,
    "start_utc": "2026-01-01T00:00:00Z",
    "end_utc": "2026-01-02T00:00:00Z",
}
RNG = np.random.default_rng(0)


def _trained(task: object, onnx_model: object, parity: object, x: np.ndarray, **fields: object) -> TrainedModel:
    """What a task's train() returns, for a model fitted on a few rows."""
    evaluation = Evaluation(task.NAME, {"test_score": 0.5}, [Target("test_score", ">=", 0.1)], {"naive": {"mae": 1.0}})  # type: ignore[attr-defined]
    return TrainedModel(
        name=task.NAME,  # type: ignore[attr-defined]
        description=f"tiny {task.NAME} for the round-trip test",  # type: ignore[attr-defined]
        onnx_bytes=onnx_model.SerializeToString(),  # type: ignore[attr-defined]
        outputs=task.OUTPUTS,  # type: ignore[attr-defined]
        evaluation=evaluation,
        parity=parity,  # type: ignore[arg-type]
        example_input=x[:1],
        **fields,  # type: ignore[arg-type]
    )


def _bandwidth() -> TrainedModel:
    """The default kind: throughput history only, persistence plus a calibrated correction."""
    features = select_features("bandwidth_predictor", {"throughput_mbps"})
    throughput = RNG.lognormal(6, 1, (64, 1)) * RNG.lognormal(0, 0.1, (64, bandwidth.STEPS + 1))
    x, next_mbps = throughput[:, :-1, None].astype(np.float32), throughput[:, -1]
    model = arch.bandwidth_model(bandwidth.STEPS, 1, arch.BandwidthArch(lstm_units=(4, 4), dense_units=4))
    model.compile(optimizer="adam", loss=arch.pinball_loss((0.05, 0.5, 0.95)))
    relative = forecast.relative_window(x[..., 0])[..., None]
    z = forecast.encode_target(x[..., 0], next_mbps)
    model.fit(relative, z[:, None], epochs=1, verbose=0)
    calibration = forecast.Calibration.fit(model.predict(relative, verbose=0), z, forecast.window_scale(x[..., 0]))
    serve = bandwidth_serving_function(model, calibration, 0, None, bandwidth.STEPS, 1)
    mbps = target_scale(next_mbps)
    scales = {n: mbps for n in ("predicted_throughput_mbps", "lower_bound_mbps", "upper_bound_mbps")}
    exported = export_serving_function(serve, x, no_decisions, scales=scales, measure_latency=False)
    return _trained(
        bandwidth, exported.onnx_model, exported.parity, x,
        rpc="PredictBandwidth", input_name="link_samples", input_shape=[None, bandwidth.STEPS, len(features)],
        features=[f.manifest_entry() for f in features],
        constants={"interval_level": 0.9, "forecast": calibration.to_manifest()},
    )  # fmt: skip


def _compression() -> TrainedModel:
    x = (RNG.random((64, 6)) * [1000, 100, 3, 10, 1, 1000] + [1, 1, 1, 1, 0, 1]).astype(np.float32)
    x[:, 2] = np.round(x[:, 2])
    log1p = feature_indices(COMPRESSION_FEATURES, compression.LOG1P_FEATURES)
    categories = {j: compression.CATEGORIES[f.name] for j, f in enumerate(COMPRESSION_FEATURES) if f.categories}
    pre = Preprocessor(log1p, categories).fit(x)
    model = arch.compression_model(5 + 4, arch.CompressionArch(dense_units=(8,)))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(pre.apply(tf.constant(x)), RNG.integers(0, compression.LEVELS, len(x)), epochs=1, verbose=0)
    serve = compression_serving_function(model, pre)
    exported = export_serving_function(serve, x, level_decisions, measure_latency=False)
    return _trained(
        compression, exported.onnx_model, exported.parity, x,
        rpc="SelectCompression", input_name="compression_features", input_shape=[None, len(COMPRESSION_FEATURES)],
        features=[f.manifest_entry() for f in COMPRESSION_FEATURES],
    )  # fmt: skip


def _reliability() -> TrainedModel:
    x = RNG.lognormal(0, 1, (300, len(RELIABILITY_FEATURES))).astype(np.float32)
    x[:, 0] = 100 - np.minimum(x[:, 0], 50)  # uptime_pct
    x[:, 1:3] = np.minimum(x[:, 1:3] / 100, 1)  # failure and packet loss ratios
    prep = ForestPreprocessing(feature_indices(RELIABILITY_FEATURES, reliability.LOG1P_FEATURES))
    forest = IsolationForest(n_estimators=10, random_state=0).fit(prep.transform(x))
    model = forest_to_onnx(forest, 0.6, prep)
    return _trained(
        reliability, model, check_forest_parity(model, forest, x, 0.6, prep).report, x,
        rpc="DetectAnomaly", input_name="node_metrics", input_shape=[None, len(RELIABILITY_FEATURES)],
        features=[f.manifest_entry() for f in RELIABILITY_FEATURES], thresholds={"anomaly_score": 0.6},
    )  # fmt: skip


def _consensus() -> TrainedModel:
    x = RNG.lognormal(3, 0.5, (64, consensus.STEPS)).astype(np.float32)
    model = arch.consensus_autoencoder(consensus.STEPS, arch.ConsensusArch(encoder_units=(4, 3), decoder_units=(3, 4)))
    model.compile(optimizer="adam", loss="mse")
    shape = consensus.window_shape(x, 0.1)[..., None]
    model.fit(shape, shape, epochs=1, verbose=0)
    thresholds = {"reconstruction_error": 1.0, "newest_z": 3.0, "held_z": 2.5, "level_ms": 500.0, "peak_ms": 500.0}
    exported = export_serving_function(
        consensus_serving_function(model, 0.1, thresholds), x, no_decisions, measure_latency=False
    )
    return _trained(
        consensus, exported.onnx_model, exported.parity, x,
        rpc="DetectHighLatency", input_name="consensus_latencies_ms", input_shape=[None, consensus.STEPS],
        features=[CONSENSUS_FEATURE.manifest_entry()], thresholds=thresholds,
    )  # fmt: skip


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, TrainedModel]]:
    """A model directory with one version of each kind, written by training.publish."""
    out = tmp_path_factory.mktemp("exported")
    trained = {m.name: m for m in (_bandwidth(), _compression(), _reliability(), _consensus())}
    for model in trained.values():
        publish(model, TRAINING_DATA, out, CREATED)
    return out, trained


@pytest.mark.parametrize(
    "name", ["bandwidth_predictor", "compression_selector", "reliability_detector", "consensus_latency"]
)
def test_an_exported_version_loads_in_the_server_and_answers_like_its_graph(
    published: tuple[Path, dict[str, TrainedModel]], name: str
) -> None:
    out, trained = published
    (version_dir,) = (out / name).iterdir()
    # load_version checks the fields, the sha256, the RPC fit and runs the manifest's example (the test inference)
    loaded = load_version(version_dir, intra_op_threads=1, max_batch_items=64)
    assert (loaded.name, loaded.version, loaded.manifest.rpc) == (name, "20261201T120000Z", trained[name].rpc)
    assert loaded.manifest.feature_names == [f["name"] for f in trained[name].features]
    rows = np.repeat(loaded.manifest.example_input, 3, axis=0)  # the row training wrote, as a batch of 3
    served = loaded.run(rows)
    session = ort_session(trained[name].onnx_bytes)
    direct = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, {loaded.manifest.input.name: rows}), strict=True)
    )
    for output, value in direct.items():
        np.testing.assert_array_equal(served[output].reshape(value.shape), value, err_msg=output)


def test_the_store_serves_every_exported_model_by_its_rpc(published: tuple[Path, dict[str, TrainedModel]]) -> None:
    out, trained = published
    store = ModelStore(out, Metrics(CollectorRegistry(), latency_budget_s=0.05))
    assert store.reload() == 4
    assert {m.manifest.rpc: m.name for m in store.models()} == {m.rpc: m.name for m in trained.values()}


def test_publish_signs_with_the_key_file_and_the_server_trusts_only_that_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from artifacts.signing import key_id, private_pem
    from training.publish import SIGNING_KEY_ENV

    key = Ed25519PrivateKey.generate()
    (tmp_path / "signing.pem").write_bytes(private_pem(key))
    monkeypatch.setenv(SIGNING_KEY_ENV, str(tmp_path / "signing.pem"))
    model = _reliability()
    version = publish(model, {"fingerprint": "0" * 64, "rows": 1}, tmp_path / "models", datetime.now(UTC))
    loaded = load_version(version, 1, 16, {key_id(key.public_key()): key.public_key()})
    assert loaded.name == model.name
    other = Ed25519PrivateKey.generate()
    with pytest.raises(ValueError, match="none of them a trusted key"):
        load_version(version, 1, 16, {key_id(other.public_key()): other.public_key()})

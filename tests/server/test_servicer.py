"""Every RPC answers like the ONNX file run directly, names its model, and maps failures to clear statuses."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import grpc
import pytest

from bench.tiny_models import DEFAULT_VERSION, SPECS
from dwcp.inference.v1 import inference_pb2 as pb
from tests.server.helpers import RunningServer, build_request, call, onnx_outputs, random_inputs, running_server

MODEL_OF = {spec["rpc"]: name for name, spec in SPECS.items()}
RPCS = list(MODEL_OF)


def _results(rpc: str, response: Any) -> list[Any]:
    field = {"PredictBandwidth": "predictions", "SelectCompression": "choices"}.get(rpc, "results")
    return list(getattr(response, field))


@pytest.mark.parametrize("items", [1, 37])
@pytest.mark.parametrize("rpc", RPCS)
def test_outputs_equal_running_the_onnx_file(server: RunningServer, model_dir: Path, rpc: str, items: int) -> None:
    inputs = random_inputs(rpc, items, seed=items)
    response = call(server.stub, rpc, build_request(rpc, inputs))
    expected = onnx_outputs(model_dir / MODEL_OF[rpc] / DEFAULT_VERSION, inputs)
    assert (response.model.name, response.model.version) == (MODEL_OF[rpc], DEFAULT_VERSION)
    results = _results(rpc, response)
    assert [getattr(r, "link_id", None) or getattr(r, "node_id", None) or r.cluster_id for r in results] == [
        f"id-{i}" for i in range(items)
    ]
    for i, r in enumerate(results):
        if rpc == "PredictBandwidth":
            assert r.predicted_throughput_mbps == expected["predicted_throughput_mbps"][i]
            assert (r.lower_bound_mbps, r.upper_bound_mbps) == (
                expected["lower_bound_mbps"][i],
                expected["upper_bound_mbps"][i],
            )
            assert r.confidence == expected["confidence"][i] and r.interval_level == 0.9
        elif rpc == "SelectCompression":
            assert r.level == expected["level"][i]
            assert list(r.level_probabilities) == expected["level_probabilities"][i].tolist()
            assert r.probability == expected["level_probabilities"][i][r.level]
        elif rpc == "DetectAnomaly":
            assert r.anomaly_score == expected["anomaly_score"][i]
            assert r.is_anomaly == expected["is_anomaly"][i] and r.threshold == pytest.approx(0.6)
        else:
            assert r.reconstruction_error == expected["reconstruction_error"][i]
            assert r.is_high_latency == expected["is_high_latency"][i] and r.threshold == pytest.approx(0.01)


def test_model_info_describes_every_model_from_its_manifest(server: RunningServer) -> None:
    models = {m.model.name: m for m in server.stub.GetModelInfo(pb.GetModelInfoRequest()).models}
    assert set(models) == set(SPECS)
    anomaly = models["reliability_detector"]
    assert anomaly.rpc == "DetectAnomaly" and anomaly.model.version == DEFAULT_VERSION
    assert [f.name for f in anomaly.inputs][:2] == ["uptime_pct", "failure_ratio"]
    assert (anomaly.inputs[0].unit, anomaly.inputs[0].max_value) == ("pct 0-100", 100)
    assert [o.name for o in anomaly.outputs] == ["anomaly_score", "is_anomaly"]
    assert anomaly.thresholds["anomaly_score"] == pytest.approx(0.6)
    assert anomaly.metrics["test_score"] == 0.5 and anomaly.max_batch_items == 1024
    assert len(anomaly.onnx_sha256) == 64 and len(anomaly.training_data_fingerprint) == 64


def test_model_info_for_one_model_and_an_unknown_one(server: RunningServer) -> None:
    one = server.stub.GetModelInfo(pb.GetModelInfoRequest(model_name="consensus_latency"))
    assert [m.model.name for m in one.models] == ["consensus_latency"]
    with pytest.raises(grpc.RpcError) as error:
        server.stub.GetModelInfo(pb.GetModelInfoRequest(model_name="no_such_model"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no_such_model" in error.value.details()


def test_a_missing_model_is_unavailable_while_the_others_serve(model_dir: Path, tmp_path: Path) -> None:
    partial = tmp_path / "models"
    shutil.copytree(model_dir, partial)
    shutil.rmtree(partial / "consensus_latency")
    with running_server(partial) as running:
        with pytest.raises(grpc.RpcError) as error:
            call(running.stub, "DetectHighLatency", build_request("DetectHighLatency", random_inputs("x", 1)))
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "DetectHighLatency" in error.value.details()
        response = call(
            running.stub, "DetectAnomaly", build_request("DetectAnomaly", random_inputs("DetectAnomaly", 2))
        )
        assert len(response.results) == 2


def test_a_missing_model_directory_makes_every_rpc_unavailable(tmp_path: Path) -> None:
    with running_server(tmp_path / "absent") as running:
        for rpc in RPCS:
            with pytest.raises(grpc.RpcError) as error:
                call(running.stub, rpc, build_request(rpc, random_inputs(rpc, 1)))
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert list(running.stub.GetModelInfo(pb.GetModelInfoRequest()).models) == []

"""Every RPC answers like the ONNX file run directly, names its model, and maps failures to clear statuses."""

from __future__ import annotations

import shutil
from operator import attrgetter
from pathlib import Path
from typing import Any

import grpc
import pytest

from bench.tiny_models import DEFAULT_VERSION
from bench.tiny_models import SPECS as MODELS
from dwcp.inference.v1 import inference_pb2 as pb
from server.rpc_spec import RpcSpec
from server.rpcs import SPECS
from tests.server.helpers import RunningServer, build_request, call, onnx_outputs, random_inputs, running_server
from tests.server.violations import field_violations

MODEL_OF = {spec["rpc"]: name for name, spec in MODELS.items()}
RPCS = list(SPECS)


def _results(response: Any) -> list[Any]:
    """The response's one repeated field: a result per item."""
    repeated = [f for f in response.DESCRIPTOR.fields if f.is_repeated]
    return list(getattr(response, repeated[0].name))


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | float | bool) else list(value)


@pytest.mark.parametrize("items", [1, 37])
@pytest.mark.parametrize("spec", SPECS.values(), ids=attrgetter("rpc"))
def test_outputs_equal_running_the_onnx_file(server: RunningServer, model_dir: Path, spec: RpcSpec, items: int) -> None:
    rpc = spec.rpc
    inputs = random_inputs(rpc, items, seed=items)
    response = call(server.stub, rpc, build_request(rpc, inputs))
    expected = onnx_outputs(model_dir / MODEL_OF[rpc] / DEFAULT_VERSION, inputs)
    manifest = server.app.store.for_rpc(rpc).manifest  # type: ignore[union-attr]
    assert (response.model.name, response.model.version) == (MODEL_OF[rpc], DEFAULT_VERSION)
    results = _results(response)
    assert [getattr(r, spec.id_field) for r in results] == [f"id-{i}" for i in range(items)]
    for i, r in enumerate(results):
        for name in spec.required_outputs:  # each output is the result field of the same name
            assert _plain(getattr(r, name)) == expected[name][i].tolist(), name
        for name in spec.required_thresholds:
            assert r.threshold == pytest.approx(manifest.thresholds[name])
        for name in spec.required_constants:
            assert getattr(r, name) == pytest.approx(manifest.constants[name])


def test_a_compression_choice_carries_the_probability_of_its_level(server: RunningServer) -> None:
    response = call(
        server.stub, "SelectCompression", build_request("SelectCompression", random_inputs("SelectCompression", 5))
    )
    for choice in response.choices:
        assert choice.probability == choice.level_probabilities[choice.level]


def test_model_info_describes_every_model_from_its_manifest(server: RunningServer) -> None:
    models = {m.model.name: m for m in server.stub.GetModelInfo(pb.GetModelInfoRequest()).models}
    assert set(models) == set(MODELS)
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
    assert field_violations(error.value) == [("model_name", "no served model is named 'no_such_model'")]


def test_a_missing_model_is_unavailable_while_the_others_serve(model_dir: Path, tmp_path: Path) -> None:
    partial = tmp_path / "models"
    shutil.copytree(model_dir, partial)
    shutil.rmtree(partial / "consensus_latency")
    with running_server(partial) as running:
        with pytest.raises(grpc.RpcError) as error:
            call(
                running.stub,
                "DetectHighLatency",
                build_request("DetectHighLatency", random_inputs("DetectHighLatency", 1)),
            )
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "DetectHighLatency" in error.value.details()
        assert field_violations(error.value) == []  # no request field is at fault
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

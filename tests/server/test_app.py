"""Health transitions, reflection, the metrics endpoint and the ready file of the real server."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from server.app import SERVICE_NAME
from tests.server.helpers import RunningServer, build_request, call, random_inputs, running_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _status(channel: grpc.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_health_is_not_serving_until_models_load_then_serving_then_not_serving_in_drain(
    model_dir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    with running_server(empty) as running:
        assert _status(running.channel, "") == NOT_SERVING
        assert _status(running.channel, SERVICE_NAME) == NOT_SERVING
        shutil.copytree(model_dir / "reliability_detector", empty / "reliability_detector")
        running.app.store.reload()
        assert _status(running.channel, f"{SERVICE_NAME}/DetectAnomaly") == SERVING
        assert _status(running.channel, SERVICE_NAME) == NOT_SERVING  # three models still missing
        for name in ("bandwidth_predictor", "compression_selector", "consensus_latency"):
            shutil.copytree(model_dir / name, empty / name)
        running.app.request_reload()
        running.app.store.reload()
        assert _status(running.channel, "") == SERVING
        assert _status(running.channel, SERVICE_NAME) == SERVING
        watch = health_pb2_grpc.HealthStub(running.channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10
        )
        assert next(watch).status == SERVING
        running.app.stop(grace_s=1.0)
        assert next(watch).status == NOT_SERVING


def test_reflection_lists_the_inference_service(server: RunningServer) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in responses[0].list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names


def test_reflection_resolves_a_method_symbol_as_ghz_asks(server: RunningServer) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=f"{SERVICE_NAME}.DetectAnomaly")
    response = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=5)))
    assert response.WhichOneof("message_response") == "file_descriptor_response"
    missing = reflection_pb2.ServerReflectionRequest(file_containing_symbol=f"{SERVICE_NAME}.NoSuchMethod")
    response = next(iter(stub.ServerReflectionInfo(iter([missing]), timeout=5)))
    assert response.WhichOneof("message_response") == "error_response"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _sample(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_metrics_are_served_and_count(server: RunningServer) -> None:
    method = 'method="DetectHighLatency"'
    before = _scrape(server.app.metrics_port)
    for batch in (1, 5):
        call(
            server.stub,
            "DetectHighLatency",
            build_request("DetectHighLatency", random_inputs("DetectHighLatency", batch)),
        )
    after = _scrape(server.app.metrics_port)
    ok = f'dwcp_inference_rpc_duration_seconds_count{{code="OK",{method}}}'
    items = f"dwcp_inference_batch_items_sum{{{method}}}"
    assert _sample(after, ok) - _sample(before, ok) == 2
    assert _sample(after, items) - _sample(before, items) == 6
    assert 'dwcp_inference_rpc_duration_seconds_bucket{code="OK",le="0.01",' in after
    assert "dwcp_inference_model_execution_seconds_count{" in after
    assert 'dwcp_inference_model_loaded{model="consensus_latency",rpc="DetectHighLatency"' in after
    assert 'dwcp_inference_model_reloads_total{model="consensus_latency",result="success"} 1.0' in after


def test_requests_over_the_budget_are_counted(model_dir: Path) -> None:
    with running_server(model_dir, latency_budget_ms=0.0001) as running:
        call(running.stub, "DetectAnomaly", build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1)))
        value = running.registry.get_sample_value("dwcp_inference_rpc_over_budget_total", {"method": "DetectAnomaly"})
        assert value == 1


def test_ready_file_names_the_bound_ports(model_dir: Path, tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    with running_server(model_dir, ready_file=ready) as running:
        content = json.loads(ready.read_text())
        assert content["grpc_port"] == running.app.grpc_port > 0
        assert content["metrics_port"] == running.app.metrics_port > 0
        assert isinstance(content["pid"], int)

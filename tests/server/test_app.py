"""Health transitions, reflection, the metrics endpoint and the ready file of the real server."""

from __future__ import annotations

import gc
import json
import shutil
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from dwcp.inference.v1 import inference_pb2_grpc as pb_grpc
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


def test_garbage_collections_are_timed_by_generation_while_the_server_runs(model_dir: Path) -> None:
    full = 'dwcp_inference_gc_pause_seconds_count{generation="2"}'
    with running_server(model_dir) as running:
        before = _sample(_scrape(running.app.metrics_port), full)
        gc.collect()
        gc.collect(1)
        after = _scrape(running.app.metrics_port)
        assert _sample(after, full) - before == 1
        assert _sample(after, 'dwcp_inference_gc_pause_seconds_count{generation="1"}') >= 1
        assert _sample(after, 'dwcp_inference_gc_pause_seconds_sum{generation="2"}') > 0
        callback = running.app.gc_pauses._callback
        assert callback in gc.callbacks
    assert callback not in gc.callbacks  # the stopped server leaves nothing behind in the process


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


def test_during_the_drain_new_calls_are_refused_unrun_and_in_flight_ones_finish(model_dir: Path) -> None:
    with running_server(model_dir, grpc_threads=2) as running:
        handle, release, entered = running.app.handler.handle, threading.Event(), threading.Semaphore(0)

        def gated(*args: Any) -> Any:
            entered.release()
            release.wait(timeout=20)
            return handle(*args)

        running.app.handler.handle = gated  # type: ignore[method-assign,assignment]
        request = build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1))
        held = [running.stub.DetectAnomaly.future(request, timeout=20) for _ in range(2)]
        assert entered.acquire(timeout=10) and entered.acquire(timeout=10)  # both running, held at the gate
        stopper = threading.Thread(target=running.app.stop, kwargs={"grace_s": 20.0})
        stopper.start()
        deadline = time.monotonic() + 10
        while _status_or_none(running.channel) == SERVING and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # stop() has moved from health to the gRPC server's own stop
        with grpc.insecure_channel(f"127.0.0.1:{running.app.grpc_port}") as fresh:
            stub = pb_grpc.InferenceServiceStub(fresh)
            try:
                stub.DetectAnomaly(request, timeout=5)
                refused = None
            except grpc.RpcError as error:
                refused = error.code()
        drain_was_running = stopper.is_alive() and not any(f.done() for f in held)
        release.set()
        answers = [len(f.result().results) for f in held]
        stopper.join(timeout=30)
    assert drain_was_running, "the drain ended before the new call was made: the test tested nothing"
    assert refused == grpc.StatusCode.UNAVAILABLE, refused  # refused while the drain was still running
    assert answers == [1, 1]  # the two in flight were answered after the refusal
    ok = {"method": "DetectAnomaly", "code": "OK"}
    assert running.registry.get_sample_value("dwcp_inference_rpc_duration_seconds_count", ok) == 2  # only they ran


def _status_or_none(channel: grpc.Channel) -> int | None:
    try:
        return _status(channel, "")
    except grpc.RpcError:
        return None

"""`python -m server` as a process: --help, start-up log, SIGHUP reload and SIGTERM drain."""

from __future__ import annotations

import dataclasses
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from bench.tiny_models import DEFAULT_VERSION, write_version
from dwcp.inference.v1 import inference_pb2 as pb
from dwcp.inference.v1 import inference_pb2_grpc as pb_grpc
from server.settings import Settings
from tests.server.helpers import ROOT, build_request, random_inputs, start_subprocess, subprocess_env

IN_FLIGHT = 'dwcp_inference_rpcs_in_flight{method="PredictBandwidth"}'
OK_ANOMALY = 'dwcp_inference_rpc_duration_seconds_count{code="OK",method="DetectAnomaly"}'


def _metric(metrics_port: int, sample: str) -> float:
    """One sample's value from a server's /metrics page (0 when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(sample + " "))


def test_help_documents_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "--help"], cwd=ROOT, env=subprocess_env(), capture_output=True, check=True
    )
    text = result.stdout.decode()
    for field in dataclasses.fields(Settings):
        assert "--" + field.name.replace("_", "-") in text
        assert "DWCP_INFERENCE_" + field.name.upper() in text


def test_sighup_reloads_and_the_log_names_the_versions(model_dir: Path, tmp_path: Path) -> None:
    models = Path(shutil.copytree(model_dir, tmp_path / "models"))
    process, ports = start_subprocess(models, tmp_path / "ready.json", "--reload-interval-s", "0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{ports['grpc_port']}") as channel:
            stub = pb_grpc.InferenceServiceStub(channel)
            write_version(models, "compression_selector", "20260201T000000Z", seed=4)
            process.send_signal(signal.SIGHUP)
            deadline, version = time.monotonic() + 15, ""
            while version != "20260201T000000Z" and time.monotonic() < deadline:
                info = stub.GetModelInfo(pb.GetModelInfoRequest(model_name="compression_selector"), timeout=5)
                version = info.models[0].model.version
                time.sleep(0.05)
            assert version == "20260201T000000Z"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    log = stderr.decode()
    assert f"consensus_latency={DEFAULT_VERSION}" in log and "gRPC listening on 127.0.0.1:" in log
    assert process.returncode == 0


def test_sigterm_lets_in_flight_requests_finish_and_exits_0(model_dir: Path, tmp_path: Path) -> None:
    models = Path(shutil.copytree(model_dir, tmp_path / "models"))
    shutil.rmtree(models / "bandwidth_predictor")
    write_version(models, "bandwidth_predictor", DEFAULT_VERSION, slow=True)  # ~0.3 s per call
    process, ports = start_subprocess(models, tmp_path / "ready.json", "--grace-period-s", "10")
    request = build_request("PredictBandwidth", random_inputs("PredictBandwidth", 2))
    outcomes: list[object] = []
    with grpc.insecure_channel(f"127.0.0.1:{ports['grpc_port']}") as channel:
        stub = pb_grpc.InferenceServiceStub(channel)
        stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=5)  # connected

        def predict() -> None:
            try:
                outcomes.append(len(stub.PredictBandwidth(request, timeout=20).predictions))
            except grpc.RpcError as error:
                outcomes.append(error.code())

        threads = [threading.Thread(target=predict) for _ in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _metric(ports["metrics_port"], IN_FLIGHT) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _metric(ports["metrics_port"], IN_FLIGHT) == 4  # each takes >= 0.3 s: all four are in flight
        process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=20)
        # After the drain nothing answers: UNAVAILABLE, not an answer or another error. That new calls are
        # refused *during* the drain, unrun, is tests/server/test_app.py's drain test (deterministic there).
        with pytest.raises(grpc.RpcError) as after:
            stub.PredictBandwidth(request, timeout=2)
        assert after.value.code() == grpc.StatusCode.UNAVAILABLE, after.value
    _, stderr = process.communicate(timeout=20)
    assert outcomes == [2, 2, 2, 2], stderr.decode()[-2000:]
    assert process.returncode == 0
    assert "draining" in stderr.decode()


def test_workers_share_the_port_and_drain_together(model_dir: Path, tmp_path: Path) -> None:
    process, ready = start_subprocess(model_dir, tmp_path / "ready.json", "--workers", "2")
    try:
        assert len(ready["workers"]) == 2 and all(w["grpc_port"] == ready["grpc_port"] for w in ready["workers"])
        request = build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1))
        options = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per channel
        for _ in range(16):
            with grpc.insecure_channel(f"127.0.0.1:{ready['grpc_port']}", options=options) as channel:
                pb_grpc.InferenceServiceStub(channel).DetectAnomaly(request, timeout=10)
        counts = [_metric(w["metrics_port"], OK_ANOMALY) for w in ready["workers"]]
        assert sum(counts) == 16 and min(counts) > 0, counts  # the kernel spread connections over both
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_second_server_on_a_port_in_use_names_the_port_and_its_flag(
    model_dir: Path, tmp_path: Path, workers: str
) -> None:
    process, ports = start_subprocess(model_dir, tmp_path / "ready.json")
    try:
        port = str(ports["grpc_port"])
        command = [sys.executable, "-m", "server", "--grpc-port", port, "--metrics-port", "-1"]
        command += ["--model-dir", str(model_dir), "--workers", workers]
        done = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr[-2000:]
        message = done.stderr
        assert f"127.0.0.1:{port}" in message and "Address already in use" in message, message[-2000:]
        assert "--grpc-port" in message and "DWCP_INFERENCE_GRPC_PORT" in message, message[-2000:]
        assert "Traceback" not in message
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0

"""The serving stage's recipe, replayed without Docker: its COPY and RUN lines in a fresh venv, then the server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.tiny_models import committed_or_tiny_models
from dwcp.inference.v1 import inference_pb2_grpc as pb_grpc
from server.ready import NotReadyError, wait_ready_file
from tests.deploy.dockerfile import ROOT, Stage, copy_sources, env_values, stage
from tests.server.certs import TestCA
from tests.server.helpers import build_request, random_inputs

# RUN lines that set up the operating system, not Python; everything else must be replayed.
SYSTEM_ONLY_RUN = ("groupadd ", "useradd ")
INSTALL_TIMEOUT_S = 600


def _clean_env(venv: Path, serving: Stage) -> dict[str, str]:
    """What a process in the image sees: the stage's ENV and the venv first on PATH; pip settings kept."""
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR") or k.startswith("PIP_")}
    env |= {k: v for k, v in os.environ.items() if k.lower().endswith("_proxy")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "/usr/bin:/bin")])
    env |= env_values(serving)
    return env


def _replay(serving: Stage, app: Path, models_copied: list[str], env: dict[str, str]) -> None:
    """COPY the serving stage's sources into `app` (its WORKDIR) and run its RUN lines there, in order."""
    assert serving.one("WORKDIR").args == "/app", "the replay maps WORKDIR /app to a temporary directory"
    app.mkdir()
    for ins in serving.instructions:
        if ins.keyword == "COPY":
            sources, dest = copy_sources(ins)
            if any(s.rstrip("/") == "models" for s in sources):
                models_copied.append(dest)  # the model set is given to the server with --model-dir below
                continue
            for source in sources:
                src, target = ROOT / source, app / dest
                if src.is_dir():
                    shutil.copytree(src, target / src.name if not dest.endswith("/") else target, dirs_exist_ok=True)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, target / src.name)
        elif ins.keyword == "RUN" and not ins.args.startswith(SYSTEM_ONLY_RUN):
            # The image's `python` is the venv's here; pip's cache is used to keep the test to about a minute.
            command = ins.args.replace("--no-cache-dir", "")
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                cwd=app,
                env=env,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
            )
            assert result.returncode == 0, f"RUN {ins.args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """(python of the fresh venv, its WORKDIR, its environment) after the serving stage's steps."""
    serving = stage("serving")
    root = tmp_path_factory.mktemp("serving-image")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
    env = _clean_env(venv, serving)
    models_copied: list[str] = []
    _replay(serving, root / "app", models_copied, env)
    assert models_copied == ["models/"], "the serving stage bakes the model set in with COPY models/ models/"
    yield venv / "bin" / "python", root / "app", env


def _python(image: tuple[Path, Path, dict[str, str]], code: str) -> subprocess.CompletedProcess[str]:
    python, app, env = image
    return subprocess.run([str(python), "-c", code], cwd=app, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("module", ["tensorflow", "training", "sklearn", "tf2onnx"])
def test_serving_install_has_no_training_dependencies(image: tuple[Path, Path, dict[str, str]], module: str) -> None:
    result = _python(image, f"import {module}")
    assert result.returncode != 0, f"`import {module}` works in the serving install"
    assert "ModuleNotFoundError" in result.stderr


@pytest.mark.slow
def test_serving_install_matches_constraints(image: tuple[Path, Path, dict[str, str]]) -> None:
    pins = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    code = "import importlib.metadata as m; print(m.version('onnxruntime'), m.version('grpcio'))"
    result = _python(image, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [pins["onnxruntime"], pins["grpcio"]]


def _entrypoint(python: Path, flags: list[str]) -> list[str]:
    """The ENTRYPOINT with the venv's python, bound to loopback instead of 0.0.0.0, plus `flags`."""
    command = stage("serving").one("ENTRYPOINT").exec_form()
    assert command[0] == "python"
    command = [str(python), *command[1:]]
    command[command.index("--host") + 1] = "127.0.0.1"
    return command + flags


def _healthcheck(python: Path) -> list[str]:
    """The HEALTHCHECK command with the venv's python; it finds the server through the environment."""
    command = stage("serving").one("HEALTHCHECK").exec_form()
    assert command[0] == "python"
    return [str(python), *command[1:]]


def _start(python: Path, app: Path, env: dict[str, str], flags: list[str], ready: Path) -> subprocess.Popen[str]:
    """The ENTRYPOINT started from the serving install; fails the test if it does not get ready."""
    process = subprocess.Popen(_entrypoint(python, flags), cwd=app, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready_file(process, ready, timeout_s=60)
    except NotReadyError as exc:
        process.kill()
        pytest.fail(f"{exc}: {process.communicate()[1][-3000:]}")
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, as `docker stop` sends; the drained server exits 0."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""


@pytest.mark.slow
def test_server_from_serving_install_answers(image: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    python, app, env = image
    models = committed_or_tiny_models(ROOT / "models", tmp_path)
    ready = tmp_path / "ready.json"
    flags = ["--grpc-port", "0", "--metrics-port", "0", "--model-dir", str(models), "--ready-file", str(ready)]
    process = _start(python, app, env, flags, ready)
    try:
        ports = json.loads(ready.read_text())
        # The HEALTHCHECK sees the container's environment, where the port would be set.
        probe_env = env | {"DWCP_INFERENCE_GRPC_PORT": str(ports["grpc_port"])}
        probe = subprocess.run(_healthcheck(python), cwd=app, env=probe_env, capture_output=True, text=True, timeout=30)
        assert probe.returncode == 0, probe.stderr
        assert "SERVING" in probe.stdout

        with grpc.insecure_channel(f"127.0.0.1:{ports['grpc_port']}") as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            request = build_request("SelectCompression", random_inputs("SelectCompression", 3))
            reply = pb_grpc.InferenceServiceStub(channel).SelectCompression(request, timeout=5)
            assert [c.link_id for c in reply.choices] == ["id-0", "id-1", "id-2"]
            assert all(0 <= c.level <= 9 for c in reply.choices)

        url = f"http://127.0.0.1:{ports['metrics_port']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            metrics = response.read().decode()
        assert 'dwcp_inference_rpc_duration_seconds_count{code="OK",method="SelectCompression"} 1.0' in metrics
    finally:
        _stop(process)


@pytest.mark.slow
def test_healthcheck_from_serving_install_follows_mutual_tls_and_the_port(
    image: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    """`docker run -e DWCP_INFERENCE_TLS_...`: the HEALTHCHECK, given the same environment, reports healthy."""
    python, app, env = image
    models = committed_or_tiny_models(ROOT / "models", tmp_path)
    ca = TestCA()
    cert, key = ca.issue().write(tmp_path, "server")
    probe_cert, probe_key = ca.issue("health-probe").write(tmp_path, "probe")
    ready = tmp_path / "ready.json"
    container_env = env | {
        "DWCP_INFERENCE_TLS_CERT_FILE": str(cert),
        "DWCP_INFERENCE_TLS_KEY_FILE": str(key),
        "DWCP_INFERENCE_TLS_CLIENT_CA_FILE": str(ca.write(tmp_path)),
        "DWCP_INFERENCE_PROBE_CERT_FILE": str(probe_cert),
        "DWCP_INFERENCE_PROBE_KEY_FILE": str(probe_key),
        "DWCP_INFERENCE_METRICS_PORT": "-1",
        "DWCP_INFERENCE_MODEL_DIR": str(models),
        "DWCP_INFERENCE_READY_FILE": str(ready),
    }
    process = _start(python, app, container_env | {"DWCP_INFERENCE_GRPC_PORT": "0"}, [], ready)
    try:
        # A fixed port in the container; here the one the server picked stands for it.
        probe_env = container_env | {"DWCP_INFERENCE_GRPC_PORT": str(json.loads(ready.read_text())["grpc_port"])}
        probe = subprocess.run(_healthcheck(python), cwd=app, env=probe_env, capture_output=True, text=True, timeout=30)
        assert probe.returncode == 0, probe.stderr
        assert "(TLS)" in probe.stdout and "SERVING" in probe.stdout
        without_client_cert = {k: v for k, v in probe_env.items() if not k.startswith("DWCP_INFERENCE_PROBE_")}
        probe = subprocess.run(
            _healthcheck(python), cwd=app, env=without_client_cert, capture_output=True, text=True, timeout=30
        )
        assert probe.returncode == 1, probe.stdout
    finally:
        _stop(process)

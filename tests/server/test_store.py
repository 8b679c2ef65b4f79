"""Model lifecycle: newest valid version wins, broken versions are rejected, hot reload loses no request."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from artifacts.seal import SEAL_FILE, seal_of, write_seal
from bench.tiny_models import DEFAULT_VERSION, write_model_set, write_version
from dwcp.inference.v1 import inference_pb2 as pb
from tests.server.helpers import build_request, call, onnx_outputs, random_inputs, running_server

NEW = "20260201T000000Z"


@pytest.fixture
def own_model_dir(model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the model set that a test may change."""
    return Path(shutil.copytree(model_dir, tmp_path / "models"))


def _rewrite_manifest(version_dir: Path, change: Callable[[dict], None]) -> None:
    """Change the manifest as a writer would have written it: sealed again, so the change itself is judged."""
    manifest = json.loads((version_dir / "manifest.json").read_text())
    change(manifest)
    (version_dir / "manifest.json").write_text(json.dumps(manifest))
    files = {p.name: p.read_bytes() for p in version_dir.iterdir() if p.name != SEAL_FILE}
    write_seal(version_dir, seal_of(files))


def _bad_sha256(version_dir: Path) -> None:
    _rewrite_manifest(version_dir, lambda m: m["onnx"].update(sha256="0" * 64))


def _garbage_onnx(version_dir: Path) -> None:
    garbage = b"not an onnx graph" * 10
    (version_dir / "model.onnx").write_bytes(garbage)
    _rewrite_manifest(version_dir, lambda m: m["onnx"].update(sha256=hashlib.sha256(garbage).hexdigest()))


def _example_mismatch(version_dir: Path) -> None:
    def shift(manifest: dict) -> None:
        manifest["example"]["outputs"]["anomaly_score"] = [[0.999]]

    _rewrite_manifest(version_dir, shift)


def _missing_field(version_dir: Path) -> None:
    _rewrite_manifest(version_dir, lambda m: m.pop("inputs"))


def _served_version(running_stub: object) -> str:
    info = running_stub.GetModelInfo(pb.GetModelInfoRequest(model_name="reliability_detector"))  # type: ignore[attr-defined]
    return str(info.models[0].model.version)


@pytest.mark.parametrize("corrupt", [_bad_sha256, _garbage_onnx, _example_mismatch, _missing_field])
def test_a_broken_new_version_is_rejected_and_the_old_one_keeps_serving(
    own_model_dir: Path, corrupt: Callable[[Path], None]
) -> None:
    with running_server(own_model_dir) as running:
        broken = write_version(own_model_dir, "reliability_detector", NEW, seed=1)
        corrupt(broken)
        running.app.store.reload()
        running.app.store.reload()  # an unchanged broken version is not retried (nor counted) again
        failures = {"model": "reliability_detector", "result": "failure"}
        assert running.registry.get_sample_value("dwcp_inference_model_reloads_total", failures) == 1
        assert _served_version(running.stub) == DEFAULT_VERSION
        response = call(
            running.stub, "DetectAnomaly", build_request("DetectAnomaly", random_inputs("DetectAnomaly", 3))
        )
        assert response.model.version == DEFAULT_VERSION and len(response.results) == 3


def test_a_new_version_that_changes_its_models_rpc_is_rejected(tmp_path: Path) -> None:
    # Models are served by RPC: a version of reliability_detector declaring SelectCompression would otherwise
    # serve beside the old version instead of replacing it, and be reloaded on every poll.
    model_dir = tmp_path / "models"
    write_version(model_dir, "reliability_detector")
    with running_server(model_dir) as running:
        other = write_version(tmp_path / "elsewhere", "compression_selector", NEW)
        moved = Path(shutil.move(other, model_dir / "reliability_detector" / NEW))
        _rewrite_manifest(moved, lambda m: m.update(name="reliability_detector"))
        running.app.store.reload()
        running.app.store.reload()  # rejected once, not reloaded on every poll
        failures = {"model": "reliability_detector", "result": "failure"}
        assert running.registry.get_sample_value("dwcp_inference_model_reloads_total", failures) == 1
        assert [(m.name, m.version, m.manifest.rpc) for m in running.app.store.models()] == [
            ("reliability_detector", DEFAULT_VERSION, "DetectAnomaly")
        ]


def test_the_newest_valid_version_wins_and_hidden_directories_are_ignored(own_model_dir: Path) -> None:
    write_version(own_model_dir, "reliability_detector", "20260301T000000Z", seed=2)
    _bad_sha256(write_version(own_model_dir, "reliability_detector", "20260401T000000Z", seed=3))
    hidden = own_model_dir / "reliability_detector" / ".20260501T000000Z.tmp"
    hidden.mkdir()
    (hidden / "manifest.json").write_text("{half written")
    with running_server(own_model_dir) as running:
        assert _served_version(running.stub) == "20260301T000000Z"
        failures = {"model": "reliability_detector", "result": "failure"}
        assert running.registry.get_sample_value("dwcp_inference_model_reloads_total", failures) == 1


def test_hot_reload_under_concurrent_load_fails_no_request(own_model_dir: Path, tmp_path: Path) -> None:
    rpcs = ["PredictBandwidth", "SelectCompression", "DetectAnomaly", "DetectHighLatency"]
    inputs = {rpc: random_inputs(rpc, 8, seed=3) for rpc in rpcs}
    requests = {rpc: build_request(rpc, inputs[rpc]) for rpc in rpcs}
    new_dir = tmp_path / "expected"
    write_model_set(new_dir, NEW, seed=1)
    model_of = {"PredictBandwidth": "bandwidth_predictor", "SelectCompression": "compression_selector"}
    model_of |= {"DetectAnomaly": "reliability_detector", "DetectHighLatency": "consensus_latency"}
    first = {rpc: onnx_outputs(own_model_dir / model_of[rpc] / DEFAULT_VERSION, inputs[rpc]) for rpc in rpcs}
    second = {rpc: onnx_outputs(new_dir / model_of[rpc] / NEW, inputs[rpc]) for rpc in rpcs}
    errors: list[BaseException] = []
    seen: dict[str, set[str]] = {rpc: set() for rpc in rpcs}
    stop = threading.Event()

    def check(rpc: str, response: Any) -> None:
        """Each answer must come entirely from the version it names."""
        version = response.model.version
        seen[rpc].add(version)
        expected = (first if version == DEFAULT_VERSION else second)[rpc]
        if rpc == "PredictBandwidth":
            got = [r.predicted_throughput_mbps for r in response.predictions]
            assert got == expected["predicted_throughput_mbps"].tolist()
        elif rpc == "SelectCompression":
            assert [r.level for r in response.choices] == expected["level"].tolist()
        elif rpc == "DetectAnomaly":
            assert [r.anomaly_score for r in response.results] == expected["anomaly_score"].tolist()
        else:
            assert [r.reconstruction_error for r in response.results] == expected["reconstruction_error"].tolist()

    def hammer(rpc: str, stub: object) -> None:
        try:
            while not stop.is_set():
                check(rpc, call(stub, rpc, requests[rpc]))  # type: ignore[arg-type]
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    with running_server(own_model_dir, grpc_threads=8) as running:
        threads = [threading.Thread(target=hammer, args=(rpc, running.stub)) for rpc in rpcs for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        for name in model_of.values():
            shutil.copytree(new_dir / name / NEW, own_model_dir / name / f".{NEW}")
            (own_model_dir / name / f".{NEW}").rename(own_model_dir / name / NEW)
        assert running.app.store.reload() == 4
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert errors == []
    assert all(seen[rpc] == {DEFAULT_VERSION, NEW} for rpc in rpcs), seen


def test_polling_picks_up_a_new_version_without_a_signal(own_model_dir: Path) -> None:
    with running_server(own_model_dir, reload_interval_s=0.1) as running:
        write_version(own_model_dir, "reliability_detector", NEW, seed=1)
        deadline = time.monotonic() + 10
        while _served_version(running.stub) != NEW and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _served_version(running.stub) == NEW
        loaded = {"model": "reliability_detector", "version": NEW, "rpc": "DetectAnomaly"}
        samples = [s for m in running.registry.collect() for s in m.samples if s.name == "dwcp_inference_model_loaded"]
        assert [s.labels["version"] for s in samples if s.labels["model"] == "reliability_detector"] == [NEW]
        assert all(
            s.labels[k] == v for s in samples if s.labels["model"] == "reliability_detector" for k, v in loaded.items()
        )

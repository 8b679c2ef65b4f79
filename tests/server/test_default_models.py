"""Integration: the committed default models (models/) load and answer their own manifest examples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artifacts.versions import newest_version, visible_dirs
from tests.server.helpers import ROOT, build_request, call, running_server

MODELS = ROOT / "models"


def _newest_manifests() -> dict[str, dict]:
    newest = {}
    for model_dir in visible_dirs(MODELS):
        version = newest_version(model_dir)
        assert version is not None, f"{model_dir} holds no version"
        newest[model_dir.name] = json.loads((version / "manifest.json").read_text())
    return newest


def test_every_committed_model_serves_its_manifest_example() -> None:
    manifests = _newest_manifests()
    assert {m["rpc"] for m in manifests.values()} == {
        "PredictBandwidth",
        "SelectCompression",
        "DetectAnomaly",
        "DetectHighLatency",
    }
    with running_server(MODELS, metrics_port=-1) as running:
        for manifest in manifests.values():
            rpc = manifest["rpc"]
            names = [f["name"] for f in manifest["inputs"][0]["features"]]
            request = build_request(rpc, np.asarray(manifest["example"]["input"]), names)
            response = call(running.stub, rpc, request)
            assert (response.model.name, response.model.version) == (manifest["name"], manifest["version"])
            expected = manifest["example"]["outputs"]
            if rpc == "PredictBandwidth":
                got = response.predictions[0].predicted_throughput_mbps
                want = expected["predicted_throughput_mbps"]
            elif rpc == "SelectCompression":
                got, want = response.choices[0].level, expected["level"]
            elif rpc == "DetectAnomaly":
                got, want = response.results[0].anomaly_score, expected["anomaly_score"]
            else:
                got, want = response.results[0].reconstruction_error, expected["reconstruction_error"]
            assert got == pytest.approx(float(np.ravel(want)[0]), rel=1e-5, abs=1e-4), rpc

"""Faults not covered in tests/server: a missing model directory, and a model directory deleted while serving."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest

from tests.server.helpers import build_request, call, random_inputs, running_server


def _detect(stub: object) -> grpc.StatusCode:
    try:
        call(stub, "DetectAnomaly", build_request("DetectAnomaly", random_inputs("DetectAnomaly", 2)))  # type: ignore[arg-type]
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_a_missing_model_directory_serves_unavailable_until_models_appear(model_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "not-yet"
    with running_server(missing) as running:
        assert _detect(running.stub) == grpc.StatusCode.UNAVAILABLE
        shutil.copytree(model_dir, missing)
        running.app.store.reload()
        assert _detect(running.stub) == grpc.StatusCode.OK


@pytest.mark.parametrize("what", ["one model", "the whole model directory"])
def test_deleting_model_files_while_serving_keeps_the_loaded_versions_serving(
    model_dir: Path, tmp_path: Path, what: str
) -> None:
    own = Path(shutil.copytree(model_dir, tmp_path / "models"))
    with running_server(own, reload_interval_s=0.05) as running:
        assert _detect(running.stub) == grpc.StatusCode.OK
        shutil.rmtree(own / "reliability_detector" if what == "one model" else own)
        for _ in range(3):
            running.app.store.reload()
        # The sessions are in memory: the versions already loaded keep answering.
        assert _detect(running.stub) == grpc.StatusCode.OK
        assert running.app._reloader.is_alive()

"""Shared test helpers: a running in-process server, valid random requests, and direct onnxruntime answers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnxruntime as ort
from prometheus_client import CollectorRegistry

from dwcp.inference.v1 import inference_pb2 as pb
from dwcp.inference.v1 import inference_pb2_grpc as pb_grpc
from server.app import InferenceApp
from server.ready import NotReadyError, wait_ready_file
from server.rpc_spec import FLAT, MESSAGE_SEQUENCE
from server.rpcs import SPECS
from server.settings import Settings
from tests.server.model_graphs import COMPRESSION_FEATURES, NODE_FEATURES, SAMPLE_FEATURES

ROOT = Path(__file__).resolve().parents[2]
ENUMS = {"link_type", "network_tier"}
SERVICE = pb.DESCRIPTOR.services_by_name["InferenceService"]


@dataclass
class RunningServer:
    """An in-process server and a stub connected to it."""

    app: InferenceApp
    channel: grpc.Channel
    stub: pb_grpc.InferenceServiceStub
    registry: CollectorRegistry


@contextmanager
def running_server(model_dir: Path, **overrides: Any) -> Iterator[RunningServer]:
    """Start the real server on free ports (polling off unless asked), yield it, and drain it."""
    values: dict[str, Any] = {"grpc_port": 0, "metrics_port": 0, "model_dir": model_dir, "reload_interval_s": 0}
    registry = CollectorRegistry()
    app = InferenceApp(Settings(**(values | overrides)), registry)
    app.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{app.grpc_port}")
    try:
        yield RunningServer(app, channel, pb_grpc.InferenceServiceStub(channel), registry)
    finally:
        channel.close()
        app.stop(grace_s=1.0)


def _rows(rng: np.random.Generator, features: list[tuple[Any, ...]], shape: tuple[int, ...]) -> np.ndarray:
    """Valid values: enums from their categories, other features inside a realistic part of their range."""
    columns = []
    for _name, _unit, low, high, categories in features:
        if categories:
            columns.append(rng.choice(sorted(categories.values()), size=shape).astype(np.float64))
        else:
            columns.append(rng.uniform(low, low + (high - low) * 0.01, size=shape))
    return np.stack(columns, axis=-1).astype(np.float32).astype(np.float64)


def _values(features: list[tuple[Any, ...]], row: np.ndarray) -> dict[str, Any]:
    return {f[0]: (int(v) if f[0] in ENUMS else float(v)) for f, v in zip(features, row, strict=True)}


# The features (name, unit, low, high, categories) and item shape of each RPC's tiny model; None: plain numbers.
_INPUTS: dict[str, tuple[list[tuple[Any, ...]] | None, tuple[int, ...]]] = {
    "PredictBandwidth": (SAMPLE_FEATURES, (10,)),
    "SelectCompression": (COMPRESSION_FEATURES, ()),
    "DetectAnomaly": (NODE_FEATURES, ()),
    "DetectHighLatency": (None, (20,)),
}


def random_inputs(rpc: str, items: int, seed: int = 0) -> np.ndarray:
    """A valid float32-exact input batch for `rpc`."""
    rng = np.random.default_rng(seed)
    features, shape = _INPUTS[rpc]
    if features is None:
        return rng.uniform(1, 2000, size=(items, *shape)).astype(np.float32).astype(np.float64)
    return _rows(rng, features, (items, *shape))


def build_request(rpc: str, inputs: np.ndarray) -> Any:
    """The request message carrying `inputs`, with ids `id-<index>`, laid out as the RPC's spec says."""
    spec = SPECS[rpc]
    features = _INPUTS[rpc][0] or []
    request_type = getattr(pb, SERVICE.methods_by_name[rpc].input_type.name)
    item_type = getattr(pb, request_type.DESCRIPTOR.fields_by_name[spec.batch_field].message_type.name)
    items = []
    for i, values in enumerate(inputs):
        fields: dict[str, Any] = {spec.id_field: f"id-{i}"}
        if spec.layout == FLAT:
            fields |= _values(features, values)
        elif spec.layout == MESSAGE_SEQUENCE:
            fields[str(spec.sequence_field)] = [spec.feature_type(**_values(features, row)) for row in values]
        else:
            fields[str(spec.sequence_field)] = list(values)
        items.append(item_type(**fields))
    return request_type(**{spec.batch_field: items})


def onnx_outputs(version_dir: Path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Run the version's model.onnx directly with onnxruntime, outputs flattened to one row per item."""
    session = ort.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    arrays = session.run(None, {session.get_inputs()[0].name: inputs.astype(np.float32)})
    names = [o.name for o in session.get_outputs()]
    flat = [a.reshape(len(inputs)) if a.size == len(inputs) else a for a in arrays]
    return dict(zip(names, flat, strict=True))


def call(stub: pb_grpc.InferenceServiceStub, rpc: str, request: Any, timeout_s: float = 10.0) -> Any:
    """Call `rpc` on the stub."""
    return getattr(stub, rpc)(request, timeout=timeout_s)


def subprocess_env() -> dict[str, str]:
    """Environment for `python -m server` children: the repo and generated code importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "gen" / "python"), env.get("PYTHONPATH", "")])
    return env


def start_subprocess(model_dir: Path, ready_file: Path, *flags: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Run `python -m server` on free ports and wait for its ready file; returns (process, ports)."""
    command = [sys.executable, "-m", "server", "--grpc-port", "0", "--metrics-port", "0"]
    command += ["--model-dir", str(model_dir), "--ready-file", str(ready_file), *flags]
    process = subprocess.Popen(command, cwd=ROOT, env=subprocess_env(), stderr=subprocess.PIPE)
    try:
        return process, wait_ready_file(process, ready_file, timeout_s=30)
    except NotReadyError as exc:
        process.kill()
        raise NotReadyError(f"{exc}: {process.communicate()[1].decode()[-2000:]}") from None

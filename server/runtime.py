"""One onnxruntime-backed runtime for every model: load, check, warm up and atomically swap versions."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from artifacts.read import read_version
from artifacts.schema import ArtifactError, Manifest
from artifacts.session import ort_session
from server.codec import input_layout
from server.metrics import Metrics
from server.rpc_spec import Outputs, RpcSpec
from server.rpcs import SPECS
from server.validation import RangeCheck

log = logging.getLogger(__name__)

EXAMPLE_ATOL = 1e-4
EXAMPLE_RTOL = 1e-5  # float32 carries ~7 digits: large outputs (e.g. 4e5 Mbps) need a relative term
WARMUP_BATCH_SIZES = (1, 16, 256)
WARMUP_RUNS = 3


def _flatten(array: np.ndarray, items: int) -> np.ndarray:
    """Per-item outputs may come as [N, 1]; serve them as [N]."""
    return array.reshape(items) if array.size == items else array.reshape(items, -1)


class LoadedModel:
    """One checked, warmed-up model version ready to serve."""

    def __init__(self, manifest: Manifest, spec: RpcSpec, session: ort.InferenceSession, sha256: str) -> None:
        self.manifest = manifest
        self.spec = spec
        self.session = session
        self.sha256 = sha256
        self.layout = input_layout(spec, manifest)
        self.range_check = RangeCheck(manifest.input.features, self.layout.inner[-1])
        self.output_names = [o.name for o in manifest.outputs]
        self._observe: Callable[[float], None] = lambda _s: None

    @property
    def name(self) -> str:
        """Model name."""
        return self.manifest.name

    @property
    def version(self) -> str:
        """Model version (its directory name)."""
        return self.manifest.version

    def bind_metrics(self, metrics: Metrics) -> None:
        """Record execution time from now on (warm-up runs are not recorded)."""
        self._observe = metrics.model_timer(self.name, self.version).observe

    def run(self, inputs: np.ndarray) -> Outputs:
        """Run one batch as a single onnxruntime call; outputs by name, per-item outputs flattened to [N]."""
        start_s = time.perf_counter()
        arrays = self.session.run(self.output_names, {self.manifest.input.name: inputs})
        self._observe(time.perf_counter() - start_s)
        return {name: _flatten(a, len(inputs)) for name, a in zip(self.output_names, arrays, strict=True)}


def _check_example(model: LoadedModel) -> None:
    manifest = model.manifest
    inputs = manifest.example_input.reshape(-1, *manifest.input.shape[1:])
    got = model.run(inputs)
    for name, expected in manifest.example_outputs.items():
        if name not in got:
            raise ArtifactError(f"{manifest.name}/{manifest.version}: example output {name!r} is not a model output")
        want = expected.astype(np.float64).reshape(len(inputs), -1)
        have = got[name].astype(np.float64).reshape(want.shape) if got[name].size == want.size else None
        if have is None or not np.allclose(have, want, rtol=EXAMPLE_RTOL, atol=EXAMPLE_ATOL):
            raise ArtifactError(
                f"{manifest.name}/{manifest.version}: test inference output {name!r} is {got[name].tolist()}, "
                f"the manifest's example says {expected.tolist()}"
            )


def load_version(
    version_dir: Path, intra_op_threads: int, max_batch_items: int, trusted_keys: dict[str, Any] | None = None
) -> LoadedModel:
    """Load, check (seal, signature, fields, sha256, RPC fit, test inference) and warm up one version.

    Raises ArtifactError (UntrustedError when `trusted_keys` is given and no trusted key signed the seal).
    """
    manifest, model_bytes = read_version(version_dir, trusted_keys)
    if (manifest.name, manifest.version) != (version_dir.parent.name, version_dir.name):
        raise ArtifactError(f"{version_dir}: manifest names {manifest.name}/{manifest.version}, not its directory")
    spec = SPECS.get(manifest.rpc)
    if spec is None:
        raise ArtifactError(f"{version_dir}: unknown rpc {manifest.rpc!r}; expected one of {', '.join(SPECS)}")
    spec.check_manifest(manifest)
    onnx_path = version_dir / manifest.onnx_file
    sha256 = manifest.onnx_sha256
    try:
        session = ort_session(model_bytes, intra_op_threads)
    except Exception as exc:  # onnxruntime raises several unrelated types for a bad graph
        raise ArtifactError(f"{onnx_path}: onnxruntime cannot load it ({exc})") from exc
    inputs = [i.name for i in session.get_inputs()]
    outputs = {o.name for o in session.get_outputs()}
    missing = [o.name for o in manifest.outputs if o.name not in outputs]
    if inputs != [manifest.input.name] or missing:
        raise ArtifactError(f"{onnx_path}: graph inputs {inputs} / missing outputs {missing} differ from the manifest")
    model = LoadedModel(manifest, spec, session, sha256)
    try:
        _check_example(model)
        row = manifest.example_input.reshape(-1, *manifest.input.shape[1:])[:1]
        for size in WARMUP_BATCH_SIZES:
            batch = np.repeat(row, min(size, max_batch_items), axis=0)
            for _ in range(WARMUP_RUNS):
                model.run(batch)
    except ArtifactError:
        raise
    except Exception as exc:  # a graph that loads but fails to run on its own example
        raise ArtifactError(f"{onnx_path}: test inference failed ({exc})") from exc
    return model

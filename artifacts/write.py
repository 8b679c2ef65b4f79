"""Write a model version directory (model.onnx + manifest.json) atomically, checked against the contract."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from artifacts.checks import manifest_problems
from artifacts.schema import MANIFEST_FILE, MANIFEST_VERSION, MODEL_FILE, ArtifactError, Manifest, ModelCard
from artifacts.seal import SEAL_FILE, seal_bytes, seal_of
from artifacts.versions import staging_dir

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

LIBRARIES = ("numpy", "scikit-learn", "skl2onnx", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that produced or run the artifacts."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _opset(model_bytes: bytes) -> int:
    import onnx  # the train extra: only writers need it

    model = onnx.load_from_string(model_bytes)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def build_manifest(
    card: ModelCard, model_bytes: bytes, example_input: np.ndarray, version: str, created: datetime
) -> Manifest:
    """The manifest of `model_bytes`: the card plus file facts, library versions and the example's outputs.

    Runs the graph on the one-row `example_input`; its outputs are what the server checks on load.
    """
    from artifacts.session import ort_session

    example = np.asarray(example_input, dtype=np.float32)
    if example.shape[0] != 1 or list(example.shape[1:]) != list(card.input.shape[1:]):
        raise ValueError(f"{card.name}: example input shape {example.shape} is not [1, *{list(card.input.shape[1:])}]")
    session = ort_session(model_bytes)
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {session.get_inputs()[0].name: example}), strict=True))
    numeric = {k: float(v) for k, v in card.constants.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return Manifest(
        name=card.name,
        version=version,
        rpc=card.rpc,
        created_utc=created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        description=card.description,
        onnx_file=MODEL_FILE,
        onnx_sha256=hashlib.sha256(model_bytes).hexdigest(),
        onnx_opset=_opset(model_bytes),
        onnx_size_bytes=len(model_bytes),
        input=card.input,
        outputs=card.outputs,
        thresholds=card.thresholds,
        constants=numeric,
        metrics=card.metrics,
        example_input=example,
        example_outputs={k: np.asarray(v) for k, v in outputs.items()},
        audit_constants={k: v for k, v in card.constants.items() if k not in numeric},
        targets=card.targets,
        baselines=card.baselines,
        training_data=card.training_data,
        library_versions=library_versions(),
        parity=card.parity,
        manifest_version=MANIFEST_VERSION,
    )


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_version(
    model_dir: Path, model_bytes: bytes, manifest: Manifest, signing_key: Ed25519PrivateKey | None = None
) -> Path:
    """Write `<model_dir>/<manifest.version>/` (model.onnx, manifest.json, seal.json); returns its path.

    The manifest must be complete (`checks.manifest_problems`) and describe `model_bytes`. Files go to a
    hidden staging directory first, renamed into place when complete, so a reader never sees a half-written
    version. An existing version is never overwritten. The seal covers both files, signed by `signing_key` if given.
    """
    document = manifest.to_json()
    problems = manifest_problems(document, manifest.name)
    if hashlib.sha256(model_bytes).hexdigest() != manifest.onnx_sha256:
        problems.append(f"{manifest.name}.onnx.sha256: does not match the model bytes")
    if problems:
        raise ArtifactError(f"{manifest.name}: invalid manifest: " + "; ".join(problems))
    model_dir.mkdir(parents=True, exist_ok=True)
    final, tmp = model_dir / manifest.version, staging_dir(model_dir, manifest.version)
    if final.exists():
        raise FileExistsError(f"model version {final} already exists")
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of an interrupted write
    tmp.mkdir()
    _write_synced(tmp / MODEL_FILE, model_bytes)
    manifest_bytes = (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()
    _write_synced(tmp / MANIFEST_FILE, manifest_bytes)
    seal = seal_of({MODEL_FILE: model_bytes, MANIFEST_FILE: manifest_bytes}, signing_key)
    _write_synced(tmp / SEAL_FILE, seal_bytes(seal))
    os.rename(tmp, final)
    dir_fd = os.open(model_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final

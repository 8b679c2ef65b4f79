"""Read a model version directory: seal.json, then manifest.json into a typed Manifest, then model.onnx."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from artifacts.checks import NUMBER, manifest_problems
from artifacts.paths import inside
from artifacts.schema import MANIFEST_FILE, ArtifactError, Feature, InputSpec, Manifest, OutputSpec, ParityReport
from artifacts.seal import check_trusted, read_seal, read_sealed_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a name -> value map, as floats."""
    return {k: float(v) for k, v in values.items() if isinstance(v, NUMBER) and not isinstance(v, bool)}


def _parity(raw: Any) -> ParityReport | None:
    keys = ("rows", "max_abs_diff", "decisions_identical")
    if not isinstance(raw, dict) or not all(k in raw for k in keys):
        return None
    return ParityReport(
        rows=int(raw["rows"]),
        max_abs_diff=float(raw["max_abs_diff"]),
        decisions_identical=bool(raw["decisions_identical"]),
        near_threshold_rows=int(raw.get("near_threshold_rows", 0)),
    )


def parse_manifest(raw: Any, where: str, complete: bool = False) -> Manifest:
    """The Manifest of a parsed manifest.json; raises ArtifactError listing every problem, each naming its field.

    `where` (usually the file's path) prefixes the field names. `complete` as in `checks.manifest_problems`.
    """
    problems = manifest_problems(raw, where, complete)
    if problems:
        raise ArtifactError("; ".join(problems))
    onnx, model_input, example = raw["onnx"], raw["inputs"][0], raw.get("example", {})
    constants = raw.get("constants", {})
    return Manifest(
        name=raw["name"],
        version=raw["version"],
        rpc=raw["rpc"],
        created_utc=str(raw.get("created_utc", "")),
        description=str(raw.get("description", "")),
        onnx_file=onnx["file"],
        onnx_sha256=onnx["sha256"].lower(),
        onnx_opset=onnx.get("opset"),
        onnx_size_bytes=onnx.get("size_bytes"),
        input=InputSpec(
            name=model_input["name"],
            shape=tuple(model_input["shape"]),
            features=tuple(Feature.from_json(f) for f in model_input["features"]),
        ),
        outputs=tuple(
            OutputSpec(o["name"], o["dtype"], str(o.get("unit", "")), str(o.get("description", "")))
            for o in raw["outputs"]
        ),
        thresholds=_numbers(raw.get("thresholds", {})),
        constants=_numbers(constants),
        metrics=_numbers(raw.get("metrics", {})),
        example_input=np.asarray(example.get("input", []), dtype=np.float32),
        example_outputs={k: np.asarray(v) for k, v in example.get("outputs", {}).items()},
        audit_constants={k: v for k, v in constants.items() if k not in _numbers(constants)},
        targets=dict(raw.get("targets") or {}),
        baselines=_numbers(raw.get("baselines") or {}),
        training_data=dict(raw.get("training_data") or {}),
        library_versions=dict(raw.get("library_versions") or {}),
        parity=_parity(raw.get("parity")),
        manifest_version=int(raw.get("manifest_version", 1)),
    )


def _parse_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{where}: cannot read JSON ({exc})") from exc


def read_manifest(version_dir: Path, complete: bool = False) -> Manifest:
    """Parse `<version_dir>/manifest.json` (unsealed: for writers and audits), raising ArtifactError on any problem."""
    path = inside(Path(version_dir), MANIFEST_FILE, str(Path(version_dir) / MANIFEST_FILE))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read JSON ({exc})") from exc
    return parse_manifest(_parse_json(data, str(path)), str(path), complete)


def read_model_bytes(version_dir: Path, manifest: Manifest) -> bytes:
    """The version's ONNX file, after checking its path and its sha256 against the manifest; raises ArtifactError."""
    onnx_path = inside(Path(version_dir), manifest.onnx_file, f"{version_dir / MANIFEST_FILE}.onnx.file")
    try:
        model_bytes = onnx_path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{onnx_path}: cannot read ({exc})") from exc
    sha256 = hashlib.sha256(model_bytes).hexdigest()
    if sha256 != manifest.onnx_sha256:
        raise ArtifactError(f"{onnx_path}: sha256 {sha256} differs from the manifest's {manifest.onnx_sha256}")
    return model_bytes


def read_version(version_dir: Path, trusted_keys: dict[str, Ed25519PublicKey] | None = None) -> tuple[Manifest, bytes]:
    """What the server serves from: the sealed manifest and model bytes of one version; raises ArtifactError.

    In order, so nothing unsealed is parsed and nothing outside the directory is opened: the seal (signed by
    a trusted key when `trusted_keys` is given, else signatures are not checked), the manifest's bytes
    against the seal, the manifest's fields, the model's path, the model's bytes against seal and manifest.
    """
    version_dir = Path(version_dir)
    seal = read_seal(version_dir)
    check_trusted(seal, trusted_keys, version_dir)
    where = str(version_dir / MANIFEST_FILE)
    manifest = parse_manifest(_parse_json(read_sealed_file(version_dir, seal, MANIFEST_FILE, where), where), where)
    model_bytes = read_sealed_file(version_dir, seal, manifest.onnx_file, f"{where}.onnx.file")
    sha256 = hashlib.sha256(model_bytes).hexdigest()
    if sha256 != manifest.onnx_sha256:
        raise ArtifactError(f"{version_dir / manifest.onnx_file}: sha256 {sha256} differs from the manifest's")
    return manifest, model_bytes

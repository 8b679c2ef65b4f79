"""Write a model version directory (model.onnx + manifest.json) atomically, per docs/artifacts.md."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd

MANIFEST_VERSION = 1
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}Z$")
LIBRARIES = ("numpy", "scikit-learn", "skl2onnx", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime")


def ort_session(model_bytes: bytes, intra_op_threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime CPU session configured like the server: few threads, sequential execution."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def median_latency_us(session: ort.InferenceSession, feed: dict[str, np.ndarray], repeats: int = 200) -> float:
    """Median wall time of one `session.run` call on `feed`, in microseconds (after warm-up)."""
    for _ in range(10):
        session.run(None, feed)
    times_s = np.empty(repeats)
    for i in range(repeats):
        start_s = time.perf_counter()
        session.run(None, feed)
        times_s[i] = time.perf_counter() - start_s
    return float(np.median(times_s) * 1e6)


class ParityError(RuntimeError):
    """The exported graph disagrees with the native model beyond tolerance."""


@dataclass(frozen=True)
class ParityReport:
    """ONNX vs native model on the same rows; `near_threshold_rows` are float ties tolerated."""

    rows: int
    max_abs_diff: float
    decisions_identical: bool
    near_threshold_rows: int = 0

    def to_manifest(self) -> dict[str, float | int | bool]:
        """The manifest's `parity` object."""
        return {
            "rows": self.rows,
            "max_abs_diff": self.max_abs_diff,
            "decisions_identical": self.decisions_identical,
            "near_threshold_rows": self.near_threshold_rows,
        }


@dataclass(frozen=True)
class Decision:
    """One decision output: native vs ONNX values and where a mismatch is a tolerated tie."""

    name: str
    expected: np.ndarray
    got: np.ndarray
    tie: np.ndarray  # bool per row: native score within tolerance of the decision boundary


def check_parity(
    scores: dict[str, tuple[np.ndarray, np.ndarray]],
    decisions: list[Decision],
    atol: float,
    rtol: float = 0.0,
) -> ParityReport:
    """Compare (expected, got) score arrays and decisions; raise ParityError naming the output.

    A score passes where |got - expected| <= atol + rtol * |expected| (rtol for values in Mbps).
    """
    max_abs_diff, rows = 0.0, 0
    for name, (expected, got) in scores.items():
        exp = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
        diff = np.abs(exp - np.asarray(got, dtype=np.float64).reshape(exp.shape))
        rows = len(exp)
        excess = diff - (atol + rtol * np.abs(exp))
        if diff.size and not excess.max() <= 0.0:  # also catches NaN
            row = int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)) // exp.shape[1])
            raise ParityError(f"output {name!r}: row {row} differs by {diff.max():.3g} (atol {atol:g}, rtol {rtol:g})")
        max_abs_diff = max(max_abs_diff, float(diff.max()) if diff.size else 0.0)
    identical, ties = True, 0
    for d in decisions:
        mismatch = np.asarray(d.expected).ravel() != np.asarray(d.got).ravel()
        tie = np.asarray(d.tie, dtype=bool).ravel()
        if (mismatch & ~tie).any():
            row = int(np.flatnonzero(mismatch & ~tie)[0])
            raise ParityError(f"output {d.name!r}: decision differs on row {row}")
        identical = identical and not mismatch.any()
        ties += int(tie.sum())
        rows = len(mismatch)
    return ParityReport(rows, max_abs_diff, identical, ties)


@dataclass(frozen=True)
class FeatureSpec:
    """One position on the last axis of a model input (docs/artifacts.md `features`)."""

    name: str  # proto field name, e.g. "retransmits_count"
    column: str  # telemetry column it came from, e.g. "retransmits"
    unit: str
    min: float  # inclusive; the server refuses values outside [min, max]
    max: float
    description: str
    categories: dict[str, int] | None = None  # enum name -> proto number, for categorical features

    def to_manifest(self) -> dict[str, Any]:
        d = asdict(self)
        if self.categories is None:
            del d["categories"]
        return d


@dataclass(frozen=True)
class OutputSpec:
    """One graph output (docs/artifacts.md `outputs`)."""

    name: str
    dtype: str  # "float32", "int64" or "bool"
    unit: str
    description: str


@dataclass
class ModelCard:
    """Everything about a version that training knows; write_model_version adds the rest."""

    name: str  # e.g. "reliability_detector"
    rpc: str  # e.g. "DetectAnomaly"
    description: str
    input_name: str
    input_shape: list[int | None]  # batch first, as null
    features: list[FeatureSpec]
    outputs: list[OutputSpec]
    training_data: dict[str, Any]  # see training_data_summary()
    parity: ParityReport
    thresholds: dict[str, float] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: dict[str, float] = field(default_factory=dict)


def data_fingerprint(data: pd.DataFrame | np.ndarray) -> str:
    """sha256 over a canonical serialisation: column names, dtypes and values in row order."""
    digest = hashlib.sha256()
    if isinstance(data, pd.DataFrame):
        for name in data.columns:
            values = data[name].to_numpy()
            digest.update(f"{name}:{values.dtype}:{len(values)}\n".encode())
            if values.dtype == object:
                digest.update("\x1f".join(map(str, values)).encode())
            else:
                digest.update(np.ascontiguousarray(values).tobytes())
    else:
        array = np.ascontiguousarray(data)
        digest.update(f"{array.dtype.str}:{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def training_data_summary(frame: pd.DataFrame, time_column: str = "timestamp") -> dict[str, Any]:
    """The manifest's `training_data`: fingerprint, rows and the UTC time span of the rows."""
    times = pd.to_datetime(frame[time_column], utc=True)
    return {
        "fingerprint": data_fingerprint(frame),
        "rows": len(frame),
        "start_utc": times.min().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_utc": times.max().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def version_for(moment: datetime) -> str:
    """Sortable version name, YYYYMMDDTHHMMSSZ, of a UTC moment."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that produced or run the artifacts."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _json_outputs(session: ort.InferenceSession, example_input: np.ndarray) -> dict[str, list[Any]]:
    names = [o.name for o in session.get_outputs()]
    values = session.run(None, {session.get_inputs()[0].name: example_input})
    return {n: np.asarray(v).tolist() for n, v in zip(names, values, strict=True)}


def build_manifest(
    card: ModelCard, model_bytes: bytes, example_input: np.ndarray, version: str, created: datetime
) -> dict[str, Any]:
    """The manifest dict for `model_bytes`; runs the graph on the one-row example."""
    model = onnx.load_from_string(model_bytes)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    example = np.asarray(example_input, dtype=np.float32)
    if example.shape[0] != 1 or list(example.shape[1:]) != card.input_shape[1:]:
        raise ValueError(f"{card.name}: example input shape {example.shape} is not [1, *{card.input_shape[1:]}]")
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": card.name,
        "version": version,
        "rpc": card.rpc,
        "created_utc": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "description": card.description,
        "onnx": {
            "file": MODEL_FILE,
            "sha256": hashlib.sha256(model_bytes).hexdigest(),
            "opset": opset,
            "size_bytes": len(model_bytes),
        },
        "inputs": [
            {
                "name": card.input_name,
                "dtype": "float32",
                "shape": card.input_shape,
                "features": [f.to_manifest() for f in card.features],
            }
        ],
        "outputs": [asdict(o) for o in card.outputs],
        "thresholds": card.thresholds,
        "constants": card.constants,
        "metrics": card.metrics,
        "targets": card.targets,
        "baselines": card.baselines,
        "training_data": card.training_data,
        "library_versions": library_versions(),
        "parity": card.parity.to_manifest(),
        "example": {"input": example.tolist(), "outputs": _json_outputs(ort_session(model_bytes), example)},
    }


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_model_version(
    model_dir: Path,
    model: onnx.ModelProto,
    card: ModelCard,
    example_input: np.ndarray,
    created: datetime | None = None,
) -> Path:
    """Write `<model_dir>/<version>/` (model.onnx + manifest.json) atomically; returns its path.

    Files go to `<model_dir>/.tmp-<version>/` first, which is renamed into place when complete,
    so a reader never sees a half-written version. An existing version is never overwritten.
    """
    created = created or datetime.now(UTC)
    version = version_for(created)
    model_dir.mkdir(parents=True, exist_ok=True)
    final, tmp = model_dir / version, model_dir / f".tmp-{version}"
    if final.exists():
        raise FileExistsError(f"model version {final} already exists")
    model_bytes = model.SerializeToString()
    manifest = build_manifest(card, model_bytes, example_input, version, created)
    problems = manifest_problems(manifest)
    if problems:
        raise ValueError(f"{card.name}: invalid manifest: " + "; ".join(problems))
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of an interrupted write
    tmp.mkdir()
    _write_synced(tmp / MODEL_FILE, model_bytes)
    _write_synced(tmp / MANIFEST_FILE, (json.dumps(manifest, indent=2, allow_nan=False) + "\n").encode())
    os.rename(tmp, final)
    dir_fd = os.open(model_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "manifest_version": int, "name": str, "version": str, "rpc": str, "created_utc": str,
    "description": str, "onnx": dict, "inputs": list, "outputs": list, "thresholds": dict,
    "constants": dict, "metrics": dict, "training_data": dict, "library_versions": dict,
    "parity": dict, "example": dict,
}  # fmt: skip
_REQUIRED_NESTED = {
    "onnx": ("file", "sha256", "opset", "size_bytes"),
    "training_data": ("fingerprint", "rows"),
    "parity": ("rows", "max_abs_diff", "decisions_identical"),
    "example": ("input", "outputs"),
}
_FEATURE_FIELDS = ("name", "column", "unit", "min", "max", "description")
_OUTPUT_FIELDS = ("name", "dtype", "unit", "description")


def _feature_problems(where: str, feature: dict[str, Any]) -> list[str]:
    problems = [f"{where}.{k} is missing" for k in _FEATURE_FIELDS if k not in feature]
    if not problems and not feature["min"] <= feature["max"]:
        problems.append(f"{where}: min {feature['min']} > max {feature['max']}")
    return problems


def manifest_problems(manifest: dict[str, Any]) -> list[str]:
    """Every way `manifest` breaks docs/artifacts.md, as messages naming the field; [] if valid."""
    problems = [
        f"{k} is missing or not {t}"
        for k, t in _REQUIRED.items()
        if not isinstance(manifest.get(k), t) or isinstance(manifest.get(k), bool)
    ]
    if problems:
        return problems
    for section, keys in _REQUIRED_NESTED.items():
        problems += [f"{section}.{k} is missing" for k in keys if k not in manifest[section]]
    if not VERSION_PATTERN.match(manifest["version"]):
        problems.append(f"version {manifest['version']!r} is not YYYYMMDDTHHMMSSZ")
    if not re.fullmatch(r"[0-9a-f]{64}", str(manifest["onnx"].get("sha256", ""))):
        problems.append("onnx.sha256 is not a sha256 hex digest")
    if len(manifest["inputs"]) != 1:
        problems.append("inputs must hold exactly one input")
    for i, model_input in enumerate(manifest["inputs"]):
        features = model_input.get("features", [])
        shape = model_input.get("shape", [])
        # One feature may describe every element of the last axis (a sequence of one quantity).
        if not features or not shape or (shape[-1] != len(features) and len(features) != 1):
            problems.append(f"inputs[{i}]: shape {shape} does not end in the {len(features)} features")
        for j, feature in enumerate(features):
            problems += _feature_problems(f"inputs[{i}].features[{j}]", feature)
    output_names = []
    for i, output in enumerate(manifest["outputs"]):
        problems += [f"outputs[{i}].{k} is missing" for k in _OUTPUT_FIELDS if k not in output]
        output_names.append(output.get("name"))
    if sorted(manifest["example"].get("outputs", {})) != sorted(output_names):
        problems.append("example.outputs does not name exactly the outputs")
    return problems


@dataclass(frozen=True)
class Manifest:
    """A validated manifest.json (training-side reader; the server has its own)."""

    name: str
    version: str
    rpc: str
    created_utc: str
    model_path: Path
    sha256: str
    opset: int
    input_name: str
    feature_names: list[str]
    output_names: list[str]
    thresholds: dict[str, float]
    raw: dict[str, Any]  # the whole document


def load_manifest(path: Path, verify_sha256: bool = True) -> Manifest:
    """Read and validate `<version>/manifest.json` (or the version directory); raise ValueError."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE if path.is_dir() else path
    try:
        raw = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{manifest_path}: cannot read manifest: {error}") from error
    problems = manifest_problems(raw) if isinstance(raw, dict) else ["not a JSON object"]
    if problems:
        raise ValueError(f"{manifest_path}: " + "; ".join(problems))
    model_path = manifest_path.parent / raw["onnx"]["file"]
    if verify_sha256:
        digest = hashlib.sha256(model_path.read_bytes()).hexdigest() if model_path.is_file() else "missing"
        if digest != raw["onnx"]["sha256"]:
            raise ValueError(f"{model_path}: sha256 {digest} does not match onnx.sha256 in the manifest")
    return Manifest(
        name=raw["name"],
        version=raw["version"],
        rpc=raw["rpc"],
        created_utc=raw["created_utc"],
        model_path=model_path,
        sha256=raw["onnx"]["sha256"],
        opset=raw["onnx"]["opset"],
        input_name=raw["inputs"][0]["name"],
        feature_names=[f["name"] for f in raw["inputs"][0]["features"]],
        output_names=[o["name"] for o in raw["outputs"]],
        thresholds=raw["thresholds"],
        raw=raw,
    )

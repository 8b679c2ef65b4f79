"""Read and check a model version's manifest.json (the artifact contract in docs/artifacts.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_FILE = "manifest.json"


class ArtifactError(ValueError):
    """A model version directory breaks the artifact contract; the message names the file and field."""


@dataclass(frozen=True)
class Feature:
    """One input feature: a position on the input's last axis, with its accepted range."""

    name: str
    unit: str
    min_value: float
    max_value: float
    description: str
    categories: dict[str, int]  # empty unless the feature is an enum


@dataclass(frozen=True)
class InputSpec:
    """The model's single input tensor."""

    name: str
    shape: tuple[int | None, ...]  # None for dynamic axes (the batch)
    features: tuple[Feature, ...]


@dataclass(frozen=True)
class OutputSpec:
    """One model output."""

    name: str
    dtype: str
    unit: str
    description: str


@dataclass(frozen=True)
class Manifest:
    """The parts of manifest.json the server uses."""

    name: str
    version: str
    rpc: str
    created_utc: str
    description: str
    onnx_file: str
    onnx_sha256: str
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    thresholds: dict[str, float]
    constants: dict[str, float]
    metrics: dict[str, float]
    training_data_fingerprint: str
    example_input: np.ndarray
    example_outputs: dict[str, np.ndarray]


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ArtifactError(f"{where}: missing required field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ArtifactError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r:.80}")
    return value


def _numbers(obj: Any, where: str) -> dict[str, float]:
    """A flat name -> number map; non-numeric entries (e.g. nested notes) are skipped."""
    if not isinstance(obj, dict):
        raise ArtifactError(f"{where}: expected an object")
    return {k: float(v) for k, v in obj.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _feature(raw: Any, where: str) -> Feature:
    categories = raw.get("categories") or {} if isinstance(raw, dict) else {}
    if not isinstance(categories, dict) or not all(isinstance(v, int) for v in categories.values()):
        raise ArtifactError(f"{where}.categories: expected a name -> integer map")
    feature = Feature(
        name=_get(raw, "name", str, where),
        unit=str(raw.get("unit", "")),
        min_value=float(_get(raw, "min", (int, float), where)),
        max_value=float(_get(raw, "max", (int, float), where)),
        description=str(raw.get("description", "")),
        categories=dict(categories),
    )
    if not feature.min_value <= feature.max_value:
        raise ArtifactError(f"{where}: min {feature.min_value} is above max {feature.max_value}")
    return feature


def _input(raw: Any, where: str) -> InputSpec:
    shape = _get(raw, "shape", list, where)
    if not shape or not all(d is None or (isinstance(d, int) and d > 0) for d in shape):
        raise ArtifactError(f"{where}.shape: expected a list of positive integers or null, got {shape}")
    if _get(raw, "dtype", str, where) != "float32":
        raise ArtifactError(f"{where}.dtype: the server feeds float32 only")
    features = tuple(_feature(f, f"{where}.features[{i}]") for i, f in enumerate(_get(raw, "features", list, where)))
    last = shape[-1]
    # Features describe the last axis; one feature may also describe every position (a sequence of one quantity).
    if len(features) != last and len(features) != 1:
        raise ArtifactError(f"{where}.features: {len(features)} features for a last axis of {last}")
    return InputSpec(name=_get(raw, "name", str, where), shape=tuple(shape), features=features)


def parse_manifest(raw: Any, where: str) -> Manifest:
    """Check the required fields of a parsed manifest.json; `where` names the file in error messages."""
    onnx = _get(raw, "onnx", dict, where)
    inputs = _get(raw, "inputs", list, where)
    if len(inputs) != 1:
        raise ArtifactError(f"{where}.inputs: expected exactly one input, got {len(inputs)}")
    outputs = tuple(
        OutputSpec(
            name=_get(o, "name", str, f"{where}.outputs[{i}]"),
            dtype=_get(o, "dtype", str, f"{where}.outputs[{i}]"),
            unit=str(o.get("unit", "")),
            description=str(o.get("description", "")),
        )
        for i, o in enumerate(_get(raw, "outputs", list, where))
    )
    example = _get(raw, "example", dict, where)
    example_outputs = _get(example, "outputs", dict, f"{where}.example")
    try:
        example_input = np.asarray(_get(example, "input", list, f"{where}.example"), dtype=np.float32)
        example_arrays = {k: np.asarray(v) for k, v in example_outputs.items()}
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{where}.example: not a rectangular numeric array ({exc})") from exc
    training_data = raw.get("training_data") or {}
    return Manifest(
        name=_get(raw, "name", str, where),
        version=_get(raw, "version", str, where),
        rpc=_get(raw, "rpc", str, where),
        created_utc=str(raw.get("created_utc", "")),
        description=str(raw.get("description", "")),
        onnx_file=_get(onnx, "file", str, f"{where}.onnx"),
        onnx_sha256=_get(onnx, "sha256", str, f"{where}.onnx").lower(),
        input=_input(inputs[0], f"{where}.inputs[0]"),
        outputs=outputs,
        thresholds=_numbers(raw.get("thresholds", {}), f"{where}.thresholds"),
        constants=_numbers(raw.get("constants", {}), f"{where}.constants"),
        metrics=_numbers(raw.get("metrics", {}), f"{where}.metrics"),
        training_data_fingerprint=str(training_data.get("fingerprint", "")) if isinstance(training_data, dict) else "",
        example_input=example_input,
        example_outputs=example_arrays,
    )


def read_manifest(version_dir: Path) -> Manifest:
    """Parse `<version_dir>/manifest.json`, raising ArtifactError naming the file and field on any problem."""
    path = version_dir / MANIFEST_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: cannot read JSON ({exc})") from exc
    return parse_manifest(raw, str(path))

"""The manifest validator: every way a manifest.json breaks docs/artifacts.md, each naming its field."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from artifacts.limits import limit_problems

VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}Z$")
SHA256_PATTERN = re.compile(r"^[0-9a-fA-F]{64}$")
NUMBER = (int, float)

# What a reader needs to serve a version: top-level fields and their JSON types.
_SERVED: dict[str, Any] = {"name": str, "version": str, "rpc": str, "onnx": dict, "inputs": list, "outputs": list}
# What a writer must also record: provenance and audit (a hand-written manifest may leave these out).
_RECORDED: dict[str, Any] = {
    "manifest_version": int, "created_utc": str, "description": str, "thresholds": dict, "constants": dict,
    "metrics": dict, "training_data": dict, "library_versions": dict, "parity": dict, "example": dict,
}  # fmt: skip
_RECORDED_NESTED: dict[str, dict[str, Any]] = {
    "onnx": {"opset": int, "size_bytes": int},
    "training_data": {"fingerprint": str, "rows": int},
    "parity": {"rows": int, "max_abs_diff": NUMBER, "decisions_identical": bool},
}


def _kind_name(kind: Any) -> str:
    names = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "a list"}
    return "a number" if kind == NUMBER else names.get(kind, str(kind))


def _is(value: Any, kind: Any) -> bool:
    """JSON type check; true and false are not numbers."""
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


class _Problems(list[str]):
    """The problems found so far; `take` reads one field and records why it is unusable."""

    def take(self, obj: Any, key: str, kind: Any, where: str, required: bool = True) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            if required:
                self.append(f"{where}: missing required field {key!r}")
            return None
        if not _is(obj[key], kind):
            self.append(f"{where}.{key}: expected {_kind_name(kind)}, got {obj[key]!r:.80}")
            return None
        return obj[key]


def _check_feature(p: _Problems, raw: Any, where: str, complete: bool) -> None:
    if not isinstance(raw, dict):
        p.append(f"{where}: expected an object")
        return
    p.take(raw, "name", str, where)
    for key in ("column", "unit", "description"):
        p.take(raw, key, str, where, required=complete)
    low, high = p.take(raw, "min", NUMBER, where), p.take(raw, "max", NUMBER, where)
    if low is not None and high is not None and not low <= high:
        p.append(f"{where}: min {low} is above max {high}")
    categories = raw.get("categories")
    if categories is not None and (
        not isinstance(categories, dict) or not all(_is(v, int) for v in categories.values())
    ):
        p.append(f"{where}.categories: expected a name -> integer map")


def _check_input(p: _Problems, raw: Any, where: str, complete: bool) -> None:
    if not isinstance(raw, dict):
        p.append(f"{where}: expected an object")
        return
    p.take(raw, "name", str, where)
    dtype = p.take(raw, "dtype", str, where)
    if dtype is not None and dtype != "float32":
        p.append(f"{where}.dtype: the server feeds float32 only, not {dtype!r}")
    shape = p.take(raw, "shape", list, where)
    if shape is not None and (not shape or not all(d is None or (_is(d, int) and d > 0) for d in shape)):
        p.append(f"{where}.shape: expected a list of positive integers or null, got {shape}")
        shape = None
    features = p.take(raw, "features", list, where)
    if features is None:
        return
    for i, feature in enumerate(features):
        _check_feature(p, feature, f"{where}.features[{i}]", complete)
    p += limit_problems(features, where)
    # Features describe the last axis; one feature may also describe every position (a sequence of one quantity).
    if shape is not None and len(features) != shape[-1] and len(features) != 1:
        p.append(f"{where}.features: {len(features)} features for a last axis of {shape[-1]}")


def _check_example(p: _Problems, raw: dict[str, Any], where: str, output_names: list[str], complete: bool) -> None:
    example = p.take(raw, "example", dict, where)
    if example is None:
        return
    example_input = p.take(example, "input", list, f"{where}.example")
    example_outputs = p.take(example, "outputs", dict, f"{where}.example")
    try:
        if example_input is not None:
            np.asarray(example_input, dtype=np.float32)
        for value in (example_outputs or {}).values():
            np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        p.append(f"{where}.example: not a rectangular numeric array ({exc})")
    if complete and example_outputs is not None and sorted(example_outputs) != sorted(output_names):
        p.append(f"{where}.example.outputs: names {sorted(example_outputs)}, not exactly the outputs {output_names}")


def _check_recorded(p: _Problems, raw: dict[str, Any], where: str) -> None:
    for key, kind in _RECORDED.items():
        p.take(raw, key, kind, where)
    for section, fields in _RECORDED_NESTED.items():
        if isinstance(raw.get(section), dict):
            for key, kind in fields.items():
                p.take(raw[section], key, kind, f"{where}.{section}")
    version = raw.get("version")
    if isinstance(version, str) and not VERSION_PATTERN.match(version):
        p.append(f"{where}.version: {version!r} is not YYYYMMDDTHHMMSSZ")
    for section in ("thresholds", "metrics", "baselines"):
        values = raw.get(section, {})
        if isinstance(values, dict):
            p += [f"{where}.{section}.{k}: expected a number" for k, v in values.items() if not _is(v, NUMBER)]


def manifest_problems(raw: Any, where: str = "manifest", complete: bool = True) -> list[str]:
    """Every way `raw` (a parsed manifest.json) breaks docs/artifacts.md; [] when it is valid.

    `complete=True` is the writer's contract: provenance and audit fields included. `complete=False` is what a
    reader needs to serve the version, which is what the server has always required of a manifest.
    """
    if not isinstance(raw, dict):
        return [f"{where}: expected a JSON object"]
    p = _Problems()
    for key, kind in _SERVED.items():
        p.take(raw, key, kind, where)
    onnx = raw.get("onnx")
    if isinstance(onnx, dict):
        p.take(onnx, "file", str, f"{where}.onnx")
        sha256 = p.take(onnx, "sha256", str, f"{where}.onnx")
        if sha256 is not None and not SHA256_PATTERN.match(sha256):
            p.append(f"{where}.onnx.sha256: {sha256!r:.80} is not a sha256 hex digest")
    inputs = raw.get("inputs")
    if isinstance(inputs, list):
        if len(inputs) != 1:
            p.append(f"{where}.inputs: expected exactly one input, got {len(inputs)}")
        else:
            _check_input(p, inputs[0], f"{where}.inputs[0]", complete)
    output_names: list[str] = []
    outputs = raw.get("outputs")
    for i, output in enumerate(outputs if isinstance(outputs, list) else []):
        output_names.append(p.take(output, "name", str, f"{where}.outputs[{i}]"))
        p.take(output, "dtype", str, f"{where}.outputs[{i}]")
        for key in ("unit", "description"):
            p.take(output, key, str, f"{where}.outputs[{i}]", required=complete)
    for key in ("thresholds", "constants", "metrics", "training_data"):
        p.take(raw, key, dict, where, required=False)
    _check_example(p, raw, where, output_names, complete)
    if complete:
        _check_recorded(p, raw, where)
    return list(dict.fromkeys(p))  # a field named twice by two checks is reported once

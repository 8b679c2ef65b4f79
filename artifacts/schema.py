"""The typed manifest.json of one model version (docs/artifacts.md), and its JSON form."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

MANIFEST_VERSION = 1
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"


class ArtifactError(ValueError):
    """A model version directory breaks the artifact contract; the message names the file and field."""


@dataclass(frozen=True)
class Feature:
    """One position on the last axis of the model input, with its accepted range."""

    name: str  # proto field name, e.g. "retransmits_count"
    unit: str
    min_value: float  # inclusive; the server refuses values outside [min_value, max_value]
    max_value: float
    description: str
    categories: dict[str, int] = field(default_factory=dict)  # enum name -> proto number; empty unless an enum
    column: str = ""  # telemetry column it came from, e.g. "retransmits"

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Feature:
        """A feature from its manifest object (`min`/`max` in JSON); `checks` has validated it."""
        return cls(
            name=raw["name"],
            unit=str(raw.get("unit", "")),
            min_value=float(raw["min"]),
            max_value=float(raw["max"]),
            description=str(raw.get("description", "")),
            categories=dict(raw.get("categories") or {}),
            column=str(raw.get("column", "")),
        )

    def to_json(self) -> dict[str, Any]:
        """The manifest object, in the field order training has always written."""
        out: dict[str, Any] = {"name": self.name, "column": self.column, "unit": self.unit}
        out |= {"min": self.min_value, "max": self.max_value, "description": self.description}
        return out | ({"categories": self.categories} if self.categories else {})


@dataclass(frozen=True)
class InputSpec:
    """The model's single float32 input tensor."""

    name: str
    shape: tuple[int | None, ...]  # None for dynamic axes (the batch)
    features: tuple[Feature, ...]  # the last axis, in order; one feature may describe every position

    def to_json(self) -> dict[str, Any]:
        """The manifest's `inputs[0]` object."""
        features = [f.to_json() for f in self.features]
        return {"name": self.name, "dtype": "float32", "shape": list(self.shape), "features": features}


@dataclass(frozen=True)
class OutputSpec:
    """One graph output."""

    name: str
    dtype: str  # "float32", "int64" or "bool"
    unit: str
    description: str


@dataclass(frozen=True)
class ParityReport:
    """Exported graph vs native model on the same rows; `near_threshold_rows` are float ties tolerated."""

    rows: int
    max_abs_diff: float
    decisions_identical: bool
    near_threshold_rows: int = 0


@dataclass(frozen=True)
class ModelCard:
    """What the writer of a version knows about its model; `write.build_manifest` adds the rest."""

    name: str  # e.g. "reliability_detector"
    rpc: str  # e.g. "DetectAnomaly"
    description: str
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    training_data: dict[str, Any]  # fingerprint, rows, start_utc, end_utc
    parity: ParityReport
    thresholds: dict[str, float] = field(default_factory=dict)  # informational copies of what the graph applies
    constants: dict[str, Any] = field(default_factory=dict)  # numbers the server may read, and audit records
    metrics: dict[str, float] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """One version's manifest.json, typed: what the server serves from and what training audits."""

    name: str
    version: str  # YYYYMMDDTHHMMSSZ, the version directory's name
    rpc: str
    created_utc: str
    description: str
    onnx_file: str
    onnx_sha256: str  # lower-case hex
    onnx_opset: int | None
    onnx_size_bytes: int | None
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    thresholds: dict[str, float]
    constants: dict[str, float]  # the numeric constants: what a server may read (e.g. interval_level)
    metrics: dict[str, float]
    example_input: np.ndarray  # float32, batch first
    example_outputs: dict[str, np.ndarray]
    audit_constants: dict[str, Any] = field(default_factory=dict)  # the other constants: what training fitted
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: dict[str, float] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)
    parity: ParityReport | None = None
    manifest_version: int = MANIFEST_VERSION

    @property
    def training_data_fingerprint(self) -> str:
        """sha256 of the training rows, or "" when the manifest does not record it."""
        return str(self.training_data.get("fingerprint", ""))

    @property
    def feature_names(self) -> list[str]:
        """The input's feature names, in input order."""
        return [f.name for f in self.input.features]

    @property
    def output_names(self) -> list[str]:
        """The outputs' names, in manifest order."""
        return [o.name for o in self.outputs]

    def to_json(self) -> dict[str, Any]:
        """The manifest.json document (`read.parse_manifest` of it gives this manifest back)."""
        onnx: dict[str, Any] = {"file": self.onnx_file, "sha256": self.onnx_sha256}
        onnx |= {"opset": self.onnx_opset} if self.onnx_opset is not None else {}
        onnx |= {"size_bytes": self.onnx_size_bytes} if self.onnx_size_bytes is not None else {}
        return {
            "manifest_version": self.manifest_version,
            "name": self.name,
            "version": self.version,
            "rpc": self.rpc,
            "created_utc": self.created_utc,
            "description": self.description,
            "onnx": onnx,
            "inputs": [self.input.to_json()],
            "outputs": [asdict(o) for o in self.outputs],
            "thresholds": self.thresholds,
            "constants": self.constants | self.audit_constants,
            "metrics": self.metrics,
            "targets": self.targets,
            "baselines": self.baselines,
            "training_data": self.training_data,
            "library_versions": self.library_versions,
            **({"parity": asdict(self.parity)} if self.parity is not None else {}),
            "example": {
                "input": self.example_input.tolist(),
                "outputs": {k: v.tolist() for k, v in self.example_outputs.items()},
            },
        }

"""Tiny valid model sets for all four models, built with onnx.helper per docs/artifacts.md.

Run `python -m tests.server.model_factory OUT_DIR [--version V]` to write a model directory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from tests.server.model_graphs import (
    COMPRESSION_FEATURES,
    LATENCY_FEATURES,
    NODE_FEATURES,
    OPSET,
    SAMPLE_FEATURES,
    THRESHOLD_ANOMALY,
    THRESHOLD_LATENCY,
    build_model,
)

DEFAULT_VERSION = "20260101T000000Z"
EXAMPLES = {
    "bandwidth_predictor": [[[42.0, 1.5, 900.0, 0.001, 3, 2, 3200.0]] * 10],
    "compression_selector": [[900.0, 42.0, 3, 2.5, 0.3, 850.0]],
    "reliability_detector": [[99.9, 0.001, 0.0, 2.0, 0.1, 40.0]],
    "consensus_latency": [[120.0 + 3 * i for i in range(20)]],
}


def _features(features: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [
        {"name": n, "column": n, "unit": u, "min": lo, "max": hi, "description": f"test feature {n}"}
        | ({"categories": c} if c else {})
        for n, u, lo, hi, c in features
    ]


SPECS: dict[str, dict[str, Any]] = {
    "bandwidth_predictor": {
        "rpc": "PredictBandwidth",
        "input": ("link_samples", [None, 10, 7], SAMPLE_FEATURES),
        "outputs": [
            ("predicted_throughput_mbps", "float32", "Mbps"),
            ("lower_bound_mbps", "float32", "Mbps"),
            ("upper_bound_mbps", "float32", "Mbps"),
            ("confidence", "float32", "score 0-1"),
        ],
        "thresholds": {},
        "constants": {"interval_level": 0.9},
    },
    "compression_selector": {
        "rpc": "SelectCompression",
        "input": ("compression_features", [None, 6], COMPRESSION_FEATURES),
        "outputs": [("level_probabilities", "float32", "probability"), ("level", "int64", "level 0-9")],
        "thresholds": {},
        "constants": {},
    },
    "reliability_detector": {
        "rpc": "DetectAnomaly",
        "input": ("node_metrics", [None, 6], NODE_FEATURES),
        "outputs": [("anomaly_score", "float32", "score 0-1"), ("is_anomaly", "bool", "flag")],
        "thresholds": {"anomaly_score": THRESHOLD_ANOMALY},
        "constants": {},
    },
    "consensus_latency": {
        "rpc": "DetectHighLatency",
        "input": ("consensus_latencies_ms", [None, 20], LATENCY_FEATURES),
        "outputs": [("reconstruction_error", "float32", "mse"), ("is_high_latency", "bool", "flag")],
        "thresholds": {"reconstruction_error": THRESHOLD_LATENCY},
        "constants": {},
    },
}


def write_version(
    model_dir: Path, name: str, version: str = DEFAULT_VERSION, seed: int = 0, slow: bool = False
) -> Path:
    """Write `<model_dir>/<name>/<version>/` atomically (temp dir + rename) and return its path."""
    spec = SPECS[name]
    model_bytes = build_model(name, seed, slow).SerializeToString()
    example = np.asarray(EXAMPLES[name], dtype=np.float32)
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    outputs = dict(zip([o[0] for o in spec["outputs"]], session.run(None, {spec["input"][0]: example}), strict=True))
    input_name, shape, features = spec["input"]
    manifest = {
        "manifest_version": 1,
        "name": name,
        "version": version,
        "rpc": spec["rpc"],
        "created_utc": f"{version[:4]}-{version[4:6]}-{version[6:8]}T00:00:00Z",
        "description": f"Tiny test model for {spec['rpc']} (seed {seed}); not trained.",
        "onnx": {"file": "model.onnx", "sha256": hashlib.sha256(model_bytes).hexdigest(), "opset": OPSET},
        "inputs": [{"name": input_name, "dtype": "float32", "shape": shape, "features": _features(features)}],
        "outputs": [
            {"name": n, "dtype": d, "unit": u, "description": f"test output {n}"} for n, d, u in spec["outputs"]
        ],
        "thresholds": spec["thresholds"],
        "constants": spec["constants"],
        "metrics": {"test_score": 0.5 + seed / 100},
        "training_data": {"fingerprint": hashlib.sha256(f"{name}-{seed}".encode()).hexdigest(), "rows": 0},
        "example": {"input": example.tolist(), "outputs": {k: v.tolist() for k, v in outputs.items()}},
    }
    final = model_dir / name / version
    staging = model_dir / name / f".{version}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "model.onnx").write_bytes(model_bytes)
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
    os.rename(staging, final)
    return final


def write_model_set(model_dir: Path, version: str = DEFAULT_VERSION, seed: int = 0) -> dict[str, Path]:
    """Write a version of all four models; returns name -> version directory."""
    return {name: write_version(model_dir, name, version, seed) for name in SPECS}


def committed_or_tiny_models(committed: Path, work: Path) -> Path:
    """`committed` when it holds a version of every model, else a tiny set written under `work`."""
    if all(any(committed.glob(f"{name}/*/manifest.json")) for name in SPECS):
        return committed
    write_model_set(work / "models")
    return work / "models"


def main() -> None:
    """Command line: write a tiny model set into OUT_DIR."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path, help="model directory to write (created if missing)")
    parser.add_argument("--version", default=DEFAULT_VERSION, help="version directory name (YYYYMMDDTHHMMSSZ)")
    parser.add_argument("--seed", type=int, default=0, help="weights seed; different seeds give different outputs")
    args = parser.parse_args()
    for name, path in write_model_set(args.out_dir, args.version, args.seed).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()

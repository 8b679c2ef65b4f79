"""Tiny valid model sets of all four models, written through the artifact contract (artifacts.write).

For tests, the load test, the benchmark and the fuzz harness; the graphs are untrained (bench.tiny_graphs).
Run `python -m bench.tiny_models OUT_DIR [--version V]` to write a model directory (needs `onnx`).
"""

from __future__ import annotations

import argparse
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from artifacts.schema import Feature, InputSpec, ModelCard, OutputSpec, ParityReport
from artifacts.write import build_manifest
from artifacts.write import write_version as write_manifest_version
from bench.tiny_graphs import (
    COMPRESSION_FEATURES,
    LATENCY_FEATURES,
    NODE_FEATURES,
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
NO_PARITY = ParityReport(rows=0, max_abs_diff=0.0, decisions_identical=True)  # no native model to compare with


def _features(features: list[tuple[Any, ...]]) -> tuple[Feature, ...]:
    return tuple(
        Feature(n, u, float(lo), float(hi), f"test feature {n}", categories=dict(c), column=n)
        for n, u, lo, hi, c in features
    )


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


def tiny_card(name: str, seed: int = 0) -> ModelCard:
    """The model card of tiny model `name`: its signature from SPECS, made-up provenance."""
    spec = SPECS[name]
    input_name, shape, features = spec["input"]
    return ModelCard(
        name=name,
        rpc=spec["rpc"],
        description=f"Tiny test model for {spec['rpc']} (seed {seed}); not trained.",
        input=InputSpec(input_name, tuple(shape), _features(features)),
        outputs=tuple(OutputSpec(n, d, u, f"test output {n}") for n, d, u in spec["outputs"]),
        training_data={"fingerprint": hashlib.sha256(f"{name}-{seed}".encode()).hexdigest(), "rows": 0},
        parity=NO_PARITY,
        thresholds=dict(spec["thresholds"]),
        constants=dict(spec["constants"]),
        metrics={"test_score": 0.5 + seed / 100},
    )


def write_version(
    model_dir: Path, name: str, version: str = DEFAULT_VERSION, seed: int = 0, slow: bool = False
) -> Path:
    """Write `<model_dir>/<name>/<version>/` atomically and return its path."""
    model_bytes = build_model(name, seed, slow).SerializeToString()
    created = datetime.strptime(version, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    example = np.asarray(EXAMPLES[name], dtype=np.float32)
    manifest = build_manifest(tiny_card(name, seed), model_bytes, example, version, created)
    return write_manifest_version(model_dir / name, model_bytes, manifest)


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

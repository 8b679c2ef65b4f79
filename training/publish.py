"""Turn a trained model into a self-describing version directory (docs/artifacts.md)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import onnx

from training.manifest import (
    FeatureSpec,
    ModelCard,
    OutputSpec,
    write_model_version,
)
from training.tasks.common import TrainedModel


def flat_baselines(model: TrainedModel) -> dict[str, float]:
    """{"persistence.mae": 12.3, ...}: every baseline metric, flattened for the manifest."""
    return {
        f"{name}.{metric}": float(value)
        for name, values in model.evaluation.baselines.items()
        for metric, value in values.items()
    }


def model_card(model: TrainedModel, training_data: dict[str, object]) -> ModelCard:
    """The manifest content training knows: features, outputs, thresholds, metrics, targets, baselines."""
    return ModelCard(
        name=model.name,
        rpc=model.rpc,
        description=model.description,
        input_name=model.input_name,
        input_shape=model.input_shape,
        features=[FeatureSpec(**f) for f in model.features],  # type: ignore[arg-type]
        outputs=[OutputSpec(**o) for o in model.outputs],
        training_data=training_data,
        parity=model.parity,
        thresholds=model.thresholds,
        constants=model.constants | {"latency_us": model.latency_us, "split_counts": model.split_counts},
        metrics={k: float(v) for k, v in model.evaluation.metrics.items()},
        targets=model.evaluation.target_table(),
        baselines=flat_baselines(model),
    )


def prune_versions(model_dir: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest version directories of one model; returns what was deleted.

    The newest is the one the server serves; the ones kept behind it are for rollback (move the
    newest aside and the server falls back on its next scan).
    """
    import shutil

    versions = sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    doomed = versions[: max(len(versions) - keep, 0)]
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def publish(model: TrainedModel, training_data: dict[str, object], output_dir: Path, created: datetime) -> Path:
    """Write `<output_dir>/<name>/<version>/` atomically; returns the version directory.

    `training_data` is `training_data_summary` of the training frame (the same for every model of a run).
    """
    if model.example_input is None:
        raise ValueError(f"{model.name}: no example input to put in the manifest")
    return write_model_version(
        output_dir / model.name,
        onnx.load_from_string(model.onnx_bytes),
        model_card(model, training_data),
        model.example_input,
        created,
    )

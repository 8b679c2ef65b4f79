"""Turn a trained model into a self-describing version directory (docs/artifacts.md)."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx

from artifacts.schema import Feature, InputSpec, ModelCard, OutputSpec
from artifacts.signing import load_signing_key
from artifacts.versions import version_for, visible_dirs
from artifacts.write import build_manifest, write_version
from training.tasks.common import TrainedModel

# When set, every version written is signed with this Ed25519 PEM private key (docs/artifacts.md, signing).
SIGNING_KEY_ENV = "DWCP_TRAINING_SIGNING_KEY_FILE"


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
        input=InputSpec(
            model.input_name, tuple(model.input_shape), tuple(Feature.from_json(f) for f in model.features)
        ),
        outputs=tuple(OutputSpec(**o) for o in model.outputs),
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
    versions = visible_dirs(model_dir)
    doomed = versions[: max(len(versions) - keep, 0)]
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def write_model_version(
    model_dir: Path,
    model: onnx.ModelProto,
    card: ModelCard,
    example_input: np.ndarray,
    created: datetime | None = None,
    signing_key_file: Path | None = None,
) -> Path:
    """Write `<model_dir>/<version>/` for `model`, the version named after `created` (default: now).

    The manifest is the card plus what artifacts.write.build_manifest measures; the write is atomic and
    refuses an existing version or an incomplete manifest. The seal is signed with `signing_key_file`
    (default: the file named by $DWCP_TRAINING_SIGNING_KEY_FILE, if set).
    """
    created = created or datetime.now(UTC)
    key_file = signing_key_file or (Path(os.environ[SIGNING_KEY_ENV]) if os.environ.get(SIGNING_KEY_ENV) else None)
    key = load_signing_key(key_file) if key_file is not None else None  # before any work: a bad key fails fast
    model_bytes = model.SerializeToString()
    manifest = build_manifest(card, model_bytes, example_input, version_for(created), created)
    return write_version(model_dir, model_bytes, manifest, key)


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

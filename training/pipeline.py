"""Run the chosen training tasks, sequentially or in separate processes, and publish what passes.

Where each trained model goes:
- parity beyond tolerance: <report_dir>/rejected/ (never served: its graph disagrees with the model evaluated);
- a failed model (Evaluation.failures, e.g. a detector that catches nothing) or one that misses a baseline:
  <report_dir>/rejected/ with --strict, the served directory otherwise (the summary says FAILED or missed);
- otherwise the served directory.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from training.report import evaluation_json
from training.tasks import TASKS
from training.tasks.common import TrainedModel, TrainSettings, progress
from training.validate import DataRequest, TelemetryData, load_validated_telemetry


@dataclass(frozen=True)
class PipelineConfig:
    """One training run."""

    data_path: Path
    incidents_path: Path | None
    output_dir: Path  # served model directory: <output_dir>/<model>/<version>/
    report_dir: Path
    models: tuple[str, ...]
    settings: TrainSettings
    parallel: bool = False  # one process per model (two at a time on this 2-core machine)
    strict: bool = False  # a failed model, or one that misses a baseline, is not published to output_dir
    keep_versions: int = 3  # versions kept per model in output_dir after publishing (older ones are deleted)
    request: DataRequest = DataRequest()  # models, feature choice and snap tolerance the data is loaded for


@dataclass
class ModelOutcome:
    """What happened to one model: trained and published, rejected, or failed."""

    name: str
    status: str  # "published", "rejected (...)", "FAILED ...", "failed: <exception>"
    entry: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # the exception that stopped training; no model exists
    failures: list[str] = field(default_factory=list)  # why a trained model is a failed model

    @property
    def failed(self) -> bool:
        """Training stopped, or the trained model is a failed one."""
        return bool(self.error or self.failures)


def limit_threads(threads: int) -> None:
    """Keep TensorFlow and BLAS to `threads` so parallel trainings do not fight over the 2 cores."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow already ran in this process (tests): its thread pools are fixed by then


def train_one(name: str, data: TelemetryData | None, config: PipelineConfig, threads: int) -> TrainedModel:
    """Train one task; loads the data itself when run in a worker process."""
    if name != "reliability_detector":
        limit_threads(threads)
    if data is None:
        data = load_validated_telemetry(config.data_path, config.incidents_path, config.request)
    progress(name, "training")
    return TASKS[name].train(data, config.settings)


def _entry(model: TrainedModel) -> dict[str, Any]:
    return {
        "description": model.description,
        "evaluation": evaluation_json(model.evaluation),
        "failures": model.failures,
        "parity": model.parity_check.to_json() if model.parity_check else asdict(model.parity),
        "latency_us": model.latency_us,
        "split_counts": model.split_counts,
        "train_seconds": model.train_seconds,
        "plots": model.plots,
        "thresholds": model.thresholds,
        "history": model.history,
    }


def run(config: PipelineConfig, data: TelemetryData) -> list[ModelOutcome]:
    """Train every chosen model, publish those that may be published, and return the outcomes."""
    from training.fingerprint import training_data_summary
    from training.publish import prune_versions, publish

    created = datetime.now(UTC).replace(microsecond=0)
    trained: dict[str, TrainedModel | BaseException] = {}
    if config.parallel and len(config.models) > 1:
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            futures = {n: pool.submit(train_one, n, None, config, 1) for n in config.models}
            for name, future in futures.items():
                try:
                    trained[name] = future.result()
                except Exception as exc:  # a model's failure is reported, the others still count
                    trained[name] = exc
    else:
        for name in config.models:
            try:
                trained[name] = train_one(name, data, config, 2)
            except Exception as exc:
                trained[name] = exc
    outcomes = []
    training_data: dict[str, object] | None = None  # hashing the frame takes seconds: once per run, if needed
    for name in config.models:
        result = trained[name]
        if isinstance(result, BaseException):
            error = f"{type(result).__name__}: {result}"
            progress(name, f"FAILED: {error}")
            outcomes.append(ModelOutcome(name, f"failed: {error}", error=error))
            continue
        entry = _entry(result)
        if training_data is None:
            training_data = training_data_summary(data.metrics) | {"sample_interval_s": data.interval_s}
        rejected = config.report_dir / "rejected"
        failures = result.failures
        if result.parity_failure:
            path = publish(result, training_data, rejected, created)
            status = f"FAILED parity, not published; model and report written to {path}"
        elif config.strict and not result.evaluation.passed:
            path = publish(result, training_data, rejected, created)
            why = "FAILED" if failures else "missed a baseline"
            status = f"rejected ({why}; not published); written to {path}"
        else:
            path = publish(result, training_data, config.output_dir, created)
            for old in prune_versions(config.output_dir / name, config.keep_versions):
                progress(name, f"deleted old version {old.name} (keeping {config.keep_versions})")
            if failures:
                status = "published, but FAILED (see the summary; --strict refuses it)"
            else:
                status = "published" if result.evaluation.passed else "published (missed a target or baseline)"
        entry |= {"status": status, "version": path.name, "path": str(path)}
        progress(name, f"{status}: {path}")
        for failure in failures:
            progress(name, f"FAILED: {failure}")
        outcomes.append(ModelOutcome(name, status, entry, failures=failures))
    return outcomes

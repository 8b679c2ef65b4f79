"""What every task shares: settings, the trained-model result, and progress output."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from artifacts.schema import ParityReport
from training.metrics import Evaluation
from training.parity import DEFAULT_TOLERANCE, ParityCheck

if TYPE_CHECKING:
    from training.validate import TelemetryData


@dataclass(frozen=True)
class TrainSettings:
    """Knobs shared by the tasks (defaults are what `make train-export` uses)."""

    epochs: int = 10  # passes over the (capped) training windows for the Keras models
    seed: int = 42  # seeds numpy, TensorFlow and the forest
    batch_size: int = 256  # Keras mini-batch size
    max_train_windows: int = 60_000  # cap on training windows per Keras model, sampled uniformly over time
    target_accuracy: float = 0.98  # the design's accuracy-style targets (recall, detection accuracy, ...)
    anomaly_threshold: str = "f1"  # reliability flag threshold on validation: "f1" (best F1) or "recall" (target)
    parity_tolerance: float = DEFAULT_TOLERANCE  # ONNX vs native: largest difference, as a share of an output's scale
    plots_dir: Path | None = None  # where to write PNG plots; None skips plotting
    verbose: bool = True  # per-epoch progress lines on stderr


@dataclass
class TrainedModel:
    """A trained model, exported to ONNX and evaluated through onnxruntime on the test split."""

    name: str
    rpc: str
    description: str
    onnx_bytes: bytes
    input_name: str
    input_shape: list[int | None]
    features: list[dict[str, Any]]
    outputs: list[dict[str, str]]
    evaluation: Evaluation
    parity: ParityReport
    thresholds: dict[str, float] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    latency_us: dict[str, float] = field(default_factory=dict)
    split_counts: dict[str, int] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    plots: dict[str, str] = field(default_factory=dict)
    example_input: np.ndarray | None = None
    train_seconds: float = 0.0
    parity_check: ParityCheck | None = None  # the full check (tolerance, per-output figures, failure)

    @property
    def parity_failure(self) -> str:
        """The parity failure message, "" when the exported graph agrees with the native model."""
        return self.parity_check.failure if self.parity_check else ""

    @property
    def failures(self) -> list[str]:
        """Why this is a failed model: its evaluation's failures, then a parity failure."""
        return self.evaluation.failures + ([f"parity: {self.parity_failure}"] if self.parity_failure else [])


class Task(Protocol):
    """What a task module provides: its model's name, training it, and re-evaluating an exported version."""

    NAME: str

    def train(self, data: TelemetryData, settings: TrainSettings) -> TrainedModel:
        """Train, export to ONNX and evaluate the exported graph on the test split."""
        ...

    def evaluate(self, onnx_bytes: bytes, manifest: dict, data: TelemetryData) -> Evaluation:
        """Evaluate an exported graph with its manifest on other telemetry."""
        ...


def progress(model: str, message: str) -> None:
    """One progress line on stderr, prefixed with the model name and wall time."""
    print(f"[{time.strftime('%H:%M:%S')}] {model}: {message}", file=sys.stderr, flush=True)


def sample_rows(rows: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Up to `cap` of the row indices `rows`, chosen uniformly and kept in time order."""
    if len(rows) <= cap:
        return rows
    return rows[np.sort(np.random.default_rng(seed).choice(len(rows), size=cap, replace=False))]


def seed_everything(seed: int) -> None:
    """Seed numpy and (when loaded) Keras/TensorFlow, so a rerun trains the same model."""
    np.random.seed(seed)
    if "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)


def keras_progress(model: str, settings: TrainSettings) -> Any:
    """A Keras callback that prints one line per epoch (loss and val_loss) through progress()."""
    import keras

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            if settings.verbose:
                shown = ", ".join(f"{k}={v:.4g}" for k, v in (logs or {}).items())
                progress(model, f"epoch {epoch + 1}/{self.params.get('epochs', settings.epochs)} {shown}")

    return EpochLine()


def incident_labels(metrics: pd.DataFrame, incidents: pd.DataFrame, interval_s: float) -> np.ndarray:
    """Bool per row: the row's node and [time, time + interval_s) overlap an incident window (window join)."""
    from training.telemetry_io import label_rows_with_incidents

    return label_rows_with_incidents(metrics, incidents, interval_s)["incident"].to_numpy(dtype=bool)


def run_onnx(onnx_bytes: bytes, x: np.ndarray, batch_rows: int = 8192) -> dict[str, np.ndarray]:
    """Run an exported graph through onnxruntime (what production runs), in batches; outputs by name.

    The session is the server's (artifacts.session.ort_session) with 2 intra-op threads: this scores
    whole test sets, not one request.
    """
    from artifacts.session import ort_session  # onnxruntime is loaded only when exporting

    session = ort_session(onnx_bytes, intra_op_threads=2)
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    parts = [session.run(None, {name: x[i : i + batch_rows].astype(np.float32)}) for i in range(0, len(x), batch_rows)]
    if not parts:
        return {o: np.zeros(0) for o in outputs}
    joined = {o: np.concatenate([p[k] for p in parts]) for k, o in enumerate(outputs)}
    # Outputs may be [N, 1] (docs/artifacts.md); callers index them per row.
    return {o: v[:, 0] if v.ndim == 2 and v.shape[1] == 1 else v for o, v in joined.items()}


def fit_keras(
    name: str, model: Any, x: Any, y: Any, x_val: Any, y_val: Any, settings: TrainSettings, epochs: int | None = None
) -> dict[str, list[float]]:
    """Fit with one progress line per epoch and early stopping on validation loss (best weights kept).

    Returns the loss history by name, as plain floats for the reports.
    """
    import keras

    history = model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=epochs or settings.epochs,
        batch_size=settings.batch_size,
        verbose=0,
        shuffle=True,
        callbacks=[
            keras_progress(name, settings),
            keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True),
        ],
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}

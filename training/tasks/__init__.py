"""The four training tasks, wired by name; each turns validated telemetry into an exported, evaluated model.

A task module imports only light modules at its top (numpy, pandas, the training helpers) and TensorFlow,
scikit-learn or onnx inside its functions, so importing them all here keeps `training validate` light.
"""

from __future__ import annotations

from training.tasks import bandwidth, compression, consensus, reliability
from training.tasks.common import Task

TASKS: dict[str, Task] = {
    bandwidth.NAME: bandwidth,
    compression.NAME: compression,
    reliability.NAME: reliability,
    consensus.NAME: consensus,
}
MODEL_NAMES: tuple[str, ...] = tuple(TASKS)

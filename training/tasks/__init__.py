"""The four training tasks; each turns validated telemetry into an exported, evaluated model."""

from __future__ import annotations

TASK_MODULES: dict[str, str] = {
    "bandwidth_predictor": "training.tasks.bandwidth",
    "compression_selector": "training.tasks.compression",
    "reliability_detector": "training.tasks.reliability",
    "consensus_latency": "training.tasks.consensus",
}
MODEL_NAMES: tuple[str, ...] = tuple(TASK_MODULES)

"""The training command line and its tasks are wired by explicit imports, and start without the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from training.datagen import DatagenConfig, write_dataset
from training.tasks import MODEL_NAMES, TASKS

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "keras", "sklearn", "onnx", "onnxruntime", "tf2onnx")

# Builds the parser and validates a small dataset, then reports which heavy libraries got imported.
PROBE = """
import json, sys
from training.cli import main
code = main(["validate", sys.argv[1]])
print(json.dumps({"code": code, "imported": [m for m in sys.argv[2:] if m in sys.modules]}))
"""


def test_validate_runs_without_importing_tensorflow_scikit_learn_or_onnx(tmp_path: Path) -> None:
    config = DatagenConfig(nodes=3, hours=1, interval_s=60, seed=3, missing_share=0.0, incidents_per_node_day=0.0)
    write_dataset(config, tmp_path, progress=False)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "metrics_train.parquet"), *HEAVY],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "imported": []}


def test_each_task_is_wired_under_its_own_name() -> None:
    assert MODEL_NAMES == ("bandwidth_predictor", "compression_selector", "reliability_detector", "consensus_latency")
    assert all(name == task.NAME for name, task in TASKS.items())

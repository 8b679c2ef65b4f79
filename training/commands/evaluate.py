"""Re-evaluate an exported model set on other telemetry, running the ONNX files through onnxruntime."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from training.tasks import MODEL_NAMES, TASKS

EXIT_OK, EXIT_MISSING, EXIT_DATA = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m training evaluate`."""
    parser.add_argument(
        "--checkpoints-dir",
        type=Path,
        required=True,
        help="model set directory: <dir>/<model>/<version>/ (the newest version is evaluated)",
    )
    parser.add_argument("--test-data-path", type=Path, required=True, help="metrics file (.parquet or .csv)")
    parser.add_argument("--test-incidents-path", type=Path, default=None, help="incidents JSON for the test data")
    parser.add_argument("--output-dir", type=Path, default=Path("reports/evaluation"), help="where to write reports")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=MODEL_NAMES,
        default=list(MODEL_NAMES),
        help="models to evaluate (default: all four)",
    )


def evaluate_newest(name: str, checkpoints_dir: Path, data: Any) -> dict[str, Any]:
    """{"version", "evaluation"} of the newest version of `name` under `checkpoints_dir` on validated `data`,
    run through onnxruntime by the task's own evaluate. Raises ValueError when there is no usable version."""
    from artifacts.read import read_manifest, read_model_bytes
    from artifacts.versions import newest_version
    from training.report import evaluation_json

    version = newest_version(checkpoints_dir / name)
    if version is None:
        raise ValueError(f"no version under {checkpoints_dir / name}")
    manifest = read_manifest(version, complete=True)
    evaluation = TASKS[name].evaluate(read_model_bytes(version, manifest), manifest.to_json(), data)
    return {"version": version.name, "evaluation": evaluation_json(evaluation)}


def run(args: argparse.Namespace) -> int:
    """Evaluate each model's newest version on the test data; print and write the comparison."""
    from training.report import summary_rows
    from training.validate import TelemetryValidationError, load_validated_telemetry

    try:
        data = load_validated_telemetry(args.test_data_path, args.test_incidents_path)
    except TelemetryValidationError as exc:
        print(exc.report.format(), file=sys.stderr)
        return EXIT_DATA
    entries, missing = [], []
    for name in args.models:
        try:
            entries.append(evaluate_newest(name, args.checkpoints_dir, data))
        except ValueError as exc:
            missing.append(name)
            print(f"{name}: {exc}", file=sys.stderr)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    out = args.output_dir / "evaluation_report.json"
    out.write_text(json.dumps({"test_data_path": str(args.test_data_path), "models": entries}, indent=2) + "\n")
    lines = summary_rows(entries)
    (args.output_dir / "evaluation_report.md").write_text(
        "# Evaluation through onnxruntime\n\n" + "\n".join(lines) + "\n"
    )
    print("\n".join(lines))
    print(f"report: {out}")
    return EXIT_MISSING if missing else EXIT_OK

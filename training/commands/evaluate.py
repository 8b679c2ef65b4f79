"""Re-evaluate an exported model set on other telemetry, running the ONNX files through onnxruntime."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def run(args: argparse.Namespace) -> int:
    """Evaluate each model's newest version on the test data; print and write the comparison."""
    from artifacts.read import read_manifest, read_model_bytes
    from artifacts.versions import newest_version
    from training.report import evaluation_json, summary_rows
    from training.validate import TelemetryValidationError, load_validated_telemetry

    try:
        data = load_validated_telemetry(args.test_data_path, args.test_incidents_path)
    except TelemetryValidationError as exc:
        print(exc.report.format(), file=sys.stderr)
        return EXIT_DATA
    entries, missing = [], []
    for name in args.models:
        version = newest_version(args.checkpoints_dir / name)
        if version is None:
            missing.append(name)
            print(f"{name}: no version under {args.checkpoints_dir / name}", file=sys.stderr)
            continue
        try:
            manifest = read_manifest(version, complete=True)
            model_bytes = read_model_bytes(version, manifest)
        except ValueError as exc:
            missing.append(name)
            print(f"{name}: {exc}", file=sys.stderr)
            continue
        evaluation = TASKS[name].evaluate(model_bytes, manifest.to_json(), data)
        entries.append({"version": version.name, "evaluation": evaluation_json(evaluation)})
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

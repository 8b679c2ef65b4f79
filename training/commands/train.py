"""Train, evaluate (through onnxruntime) and export the models; write the model set and the reports.

Exit codes: 0 every model published and passed; 1 a model's training stopped with an error; 2 the data has
problems; 3 with --strict, a model missed a baseline and was not published; 4 a model FAILED (its exported
graph disagrees with it beyond --parity-tolerance, or a detector's flag catches nothing or flags nearly
everything), with or without --strict: without it a failed detector is still published, the exit says so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.commands.validate import add_data_arguments, data_request
from training.tasks import MODEL_NAMES

EXIT_OK, EXIT_ERROR, EXIT_DATA, EXIT_MISSED, EXIT_FAILED = 0, 1, 2, 3, 4


def _tolerance(text: str) -> float:
    """argparse type of --parity-tolerance: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--parity-tolerance must be a number, not {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"--parity-tolerance must be a finite number >= 0, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m training train`."""
    from training.tasks.common import TrainSettings

    d = TrainSettings()
    parser.add_argument("--data-path", type=Path, required=True, help="metrics file (.parquet or .csv)")
    parser.add_argument("--incidents-path", type=Path, default=None, help="incidents JSON (labels)")
    parser.add_argument("--output-dir", type=Path, required=True, help="served model directory to publish into")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"), help="where reports and plots go")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=MODEL_NAMES,
        default=list(MODEL_NAMES),
        help="models to train (default: all four)",
    )
    parser.add_argument("--epochs", type=int, default=d.epochs, help="epochs for the Keras models")
    parser.add_argument(
        "--max-train-windows",
        type=int,
        default=d.max_train_windows,
        help="cap on training windows/rows per Keras model",
    )
    parser.add_argument(
        "--target-accuracy",
        type=float,
        default=d.target_accuracy,
        help="accuracy-style target (recall, detection and oracle accuracy)",
    )
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed")
    parser.add_argument(
        "--anomaly-threshold",
        choices=("f1", "recall"),
        default=d.anomaly_threshold,
        help="reliability flag threshold chosen on validation: best F1, or reach the recall target "
        "(flags most normal rows when anomalies are subtle)",
    )
    parser.add_argument(
        "--parity-tolerance",
        type=_tolerance,
        default=d.parity_tolerance,
        help="largest ONNX-vs-native difference of a float output, as a share of its scale (regressors: the "
        "test targets' median absolute deviation; detector scores: their threshold; 0-1 scores: 1); decisions "
        "must be identical except within this band of a threshold. A model beyond it is written to "
        "<report-dir>/rejected/, not published, and the run exits 4 (default: %(default)g)",
    )
    parser.add_argument("--parallel", action="store_true", help="train models in separate processes")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="do not publish a model that FAILED or misses a baseline (it goes to <report-dir>/rejected/); "
        "exit 4 if one FAILED, else 3 if one missed a baseline",
    )
    parser.add_argument(
        "--keep-versions",
        type=int,
        default=3,
        help="versions kept per model in --output-dir after publishing (older ones are deleted)",
    )
    add_data_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")


def run(args: argparse.Namespace) -> int:
    """Validate the data, run the pipeline, write reports, print the summary table."""
    from datetime import UTC, datetime

    from training.pipeline import PipelineConfig
    from training.pipeline import run as run_pipeline
    from training.report import summary_rows, write_reports
    from training.tasks.common import TrainSettings
    from training.validate import TelemetryValidationError, load_validated_telemetry

    request = data_request(args, tuple(args.models))
    if isinstance(request, str):
        print(f"train: {request}", file=sys.stderr)
        return EXIT_DATA
    try:
        data = load_validated_telemetry(args.data_path, args.incidents_path, request)
    except TelemetryValidationError as exc:
        print(exc.report.format(), file=sys.stderr)
        print("training stopped: the data has problems (see above)", file=sys.stderr)
        return EXIT_DATA
    for notice in data.report.notices:
        print(notice.format(), file=sys.stderr)
    settings = TrainSettings(
        epochs=args.epochs,
        seed=args.seed,
        max_train_windows=args.max_train_windows,
        target_accuracy=args.target_accuracy,
        anomaly_threshold=args.anomaly_threshold,
        parity_tolerance=args.parity_tolerance,
        plots_dir=args.report_dir / "plots",
        verbose=not args.quiet,
    )
    config = PipelineConfig(
        args.data_path,
        args.incidents_path,
        args.output_dir,
        args.report_dir,
        tuple(args.models),
        settings,
        args.parallel,
        args.strict,
        max(args.keep_versions, 1),
        request,
    )
    outcomes = run_pipeline(config, data)
    entries = [o.entry for o in outcomes if o.entry]
    header = {
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data_path": str(args.data_path),
        "incidents_path": str(args.incidents_path),
        "rows": len(data.metrics),
        # Rows snapped to the sample grid, duplicates and off-grid rows dropped; windows lost to gaps are per model.
        "sampling": data.sampling_counts(),
        "features": {name: [f.name for f in data.features(name)] for name in args.models},
        "seed": args.seed,
        "epochs": args.epochs,
        "strict": args.strict,
        "parity_tolerance": args.parity_tolerance,
        "failed": [o.name for o in outcomes if o.failed],  # training stopped, or a FAILED model
    }
    md = write_reports(args.report_dir, entries, header)
    print("\n".join(summary_rows(entries)))
    for outcome in outcomes:
        print(f"{outcome.name}: {outcome.status}")
    print(f"report: {md}")
    for outcome in outcomes:
        for failure in outcome.failures:
            print(f"FAILED {outcome.name}: {failure}")
    if any(o.error for o in outcomes):
        return EXIT_ERROR
    if any(o.failures for o in outcomes):
        return EXIT_FAILED
    missed = [o.name for o in outcomes if not o.entry["evaluation"]["passed"]]
    if missed and args.strict:
        print(f"strict: {', '.join(missed)} missed a target or baseline and were not published", file=sys.stderr)
        return EXIT_MISSED
    return EXIT_OK

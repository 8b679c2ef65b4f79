"""Check a telemetry file (CSV or Parquet) and optional incidents JSON against the schema."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from training.features import MODEL_DATA

if TYPE_CHECKING:
    from training.readiness import DataRequest

# Exit codes: 0 valid, 1 data problems found, 2 a flag that makes no sense.
EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def _tolerance(text: str) -> float:
    value = float(text)
    if not 0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"{text}: expected a share of the interval, >= 0 and < 0.5")
    return value


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--features and --snap-tolerance, shared by validate and train."""
    from training.sampling import DEFAULT_SNAP_TOLERANCE

    parser.add_argument(
        "--features",
        nargs="+",
        default=[],
        metavar="MODEL=FEATURE,...",
        help="train MODEL on exactly these features (its core features included), e.g. "
        "bandwidth_predictor=throughput_mbps,rtt_ms; default: every feature whose column is present",
    )
    parser.add_argument(
        "--snap-tolerance",
        type=_tolerance,
        default=DEFAULT_SNAP_TOLERANCE,
        help="share of the sample interval a stamp may be off its grid slot and still be snapped onto it",
    )


def data_request(args: argparse.Namespace, models: tuple[str, ...] | None) -> DataRequest | str:
    """The DataRequest of the flags, or the message of what is wrong with --features."""
    from training.features import FeatureSelectionError, parse_feature_choice
    from training.readiness import DataRequest

    try:
        choice = parse_feature_choice(args.features)
    except FeatureSelectionError as exc:
        return str(exc)
    outside = [m for m in choice if models is not None and m not in models]
    if outside:
        return f"--features: {', '.join(outside)} is not among --models ({', '.join(models or ())})"
    return DataRequest(models=models, features=choice, snap_tolerance=args.snap_tolerance)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m training validate`."""
    parser.add_argument("path", type=Path, help="metrics file: .csv, .csv.gz, .parquet or .pq")
    parser.add_argument("--incidents", type=Path, default=None, help="incidents JSON file (an array of records)")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=tuple(MODEL_DATA),
        default=None,
        help="models the file must be able to train (default: all four, reporting which it can)",
    )
    add_data_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="print problems only, no notices or summary")


def run(args: argparse.Namespace) -> int:
    """Validate and print the report; problems go to stdout, the exit code is 1 when there are any."""
    from training.validate import validate_files

    request = data_request(args, tuple(args.models) if args.models else None)
    if isinstance(request, str):
        print(f"validate: {request}", file=sys.stderr)
        return EXIT_USAGE
    started_s = time.perf_counter()
    report = validate_files(args.path, args.incidents, request)
    text = "\n".join(p.format() for p in report.problems) if args.quiet else report.format()
    if text:
        print(text)
    print(f"validated in {time.perf_counter() - started_s:.2f} s", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_PROBLEMS

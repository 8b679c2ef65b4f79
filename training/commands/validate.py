"""Check a telemetry file (CSV or Parquet) and optional incidents JSON against the schema."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Exit codes: 0 valid, 1 data problems found.
EXIT_OK = 0
EXIT_PROBLEMS = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m training validate`."""
    parser.add_argument("path", type=Path, help="metrics file: .csv, .csv.gz, .parquet or .pq")
    parser.add_argument("--incidents", type=Path, default=None, help="incidents JSON file (an array of records)")
    parser.add_argument("--quiet", action="store_true", help="print problems only, no notices or summary")


def run(args: argparse.Namespace) -> int:
    """Validate and print the report; problems go to stdout, the exit code is 1 when there are any."""
    from training.validate import validate_files

    started_s = time.perf_counter()
    report = validate_files(args.path, args.incidents)
    text = "\n".join(p.format() for p in report.problems) if args.quiet else report.format()
    if text:
        print(text)
    print(f"validated in {time.perf_counter() - started_s:.2f} s", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_PROBLEMS

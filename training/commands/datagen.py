"""Generate synthetic DWCP telemetry: train and held-out test ranges, incident labels, dataset.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.datagen.config import DatagenConfig

_DEFAULTS = DatagenConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m training datagen`; defaults are DatagenConfig's."""
    parser.add_argument("--nodes", type=int, default=_DEFAULTS.nodes, help="number of DWCP nodes (>= 3)")
    parser.add_argument("--hours", type=float, default=_DEFAULTS.hours, help="length of the whole time range")
    parser.add_argument("--interval-s", type=int, default=_DEFAULTS.interval_s, help="sample interval in seconds")
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="random seed; same seed, same bytes")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    parser.add_argument("--start-utc", default=_DEFAULTS.start_utc, help="first sample, ISO 8601 UTC")
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=_DEFAULTS.test_fraction,
        help="share of the time range, at its end, written as the held-out test range",
    )
    parser.add_argument(
        "--extra-peers",
        type=int,
        default=_DEFAULTS.extra_peers,
        help="links per node to nodes outside its consensus cluster",
    )
    parser.add_argument(
        "--incidents-per-node-day",
        type=float,
        default=_DEFAULTS.incidents_per_node_day,
        help="mean rate of labelled incidents",
    )
    parser.add_argument(
        "--missing-share",
        type=float,
        default=_DEFAULTS.missing_share,
        help="share of values missing in a few measured columns (see docs/network-model.md)",
    )
    parser.add_argument("--formats", default="parquet,csv", help="comma-separated: parquet, csv")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(args: argparse.Namespace) -> int:
    """Generate and write the dataset; exit code 2 for an invalid configuration."""
    from training.datagen.writer import write_dataset

    try:
        config = DatagenConfig(
            nodes=args.nodes,
            hours=args.hours,
            interval_s=args.interval_s,
            seed=args.seed,
            start_utc=args.start_utc,
            test_fraction=args.test_fraction,
            extra_peers=args.extra_peers,
            incidents_per_node_day=args.incidents_per_node_day,
            missing_share=args.missing_share,
        )
        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        summary = write_dataset(config, args.out, formats=formats, progress=not args.quiet)
    except ValueError as exc:
        print(f"datagen: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"datagen: cannot write to {args.out}: {exc}", file=sys.stderr)
        return 2
    for name, split in summary["splits"].items():
        print(
            f"{name}: {split['rows']:,} rows, {split['incidents']} incidents: "
            + ", ".join(str(Path(args.out) / f) for f in split["files"])
        )
    return 0

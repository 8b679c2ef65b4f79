"""Import raw telemetry (CSV/Parquet series, mahimahi traces, NAB labelled series) as schema telemetry."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

# Exit codes: 0 imported, 2 the input or the flags cannot be imported as given.
EXIT_OK = 0
EXIT_INPUT = 2


def _mapping_arguments(parser: argparse.ArgumentParser, node_default: str | None, peer_default: str | None) -> None:
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="SOURCE=COLUMN",
        help="source column -> telemetry column (or node_id, peer_id, timestamp); repeatable. "
        "Source columns already named like telemetry columns map to themselves",
    )
    parser.add_argument(
        "--unit",
        action="append",
        default=[],
        metavar="SOURCE=UNIT",
        help="unit of a source column, converted into the telemetry column's unit (e.g. value=kbps, "
        "rtt=s, loss=percent; a numeric time column: s, ms, us, ns); default: already in that unit",
    )
    parser.add_argument("--ignore", action="append", default=[], metavar="SOURCE", help="source column to leave out")
    parser.add_argument(
        "--node-id",
        default=node_default,
        help="node_id of every row when no column is mapped to it; {stem} / {name} is the file's name "
        f"without / with its suffix (default: {node_default})",
    )
    parser.add_argument(
        "--peer-id",
        default=peer_default,
        help="peer_id of every row when no column is mapped to it; {stem}, {name}, or {node_id} for a "
        f"node-level series (default: {peer_default})",
    )
    parser.add_argument("--timezone", default="UTC", help="time zone of stamps written without an offset")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m training import FORMAT`: one subcommand per source format."""
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    table = formats.add_parser("table", help="CSV or Parquet series: timestamp, value or named columns")
    table.add_argument("paths", nargs="+", type=Path, help=".csv, .csv.gz, .parquet or .pq files")
    _mapping_arguments(table, None, None)

    trace = formats.add_parser("mahimahi", help="mahimahi packet-delivery traces -> throughput_mbps, a link per file")
    trace.add_argument("paths", nargs="+", type=Path, help="trace files (one millisecond stamp per line)")
    trace.add_argument("--node-id", default=None, help="node_id of each trace's link; {stem}/{name} as for table")
    trace.add_argument("--peer-id", default=None, help="peer_id of each trace's link, e.g. '{name}'")
    trace.add_argument("--interval-s", type=int, default=1, help="width of a throughput interval, whole seconds")
    trace.add_argument("--start-utc", default="1970-01-01T00:00:00Z", help="UTC time of the trace's millisecond 0")
    trace.add_argument("--packet-bytes", type=int, default=1500, help="bytes delivered per trace line")

    nab = formats.add_parser("nab", help="NAB-style timestamp,value files plus anomaly windows -> telemetry, incidents")
    nab.add_argument("files", nargs="*", help="files relative to --data-root (default: every file the labels name)")
    nab.add_argument("--data-root", type=Path, required=True, help="directory the labels' keys are relative to")
    nab.add_argument("--labels", type=Path, required=True, help="windows JSON, e.g. NAB labels/combined_windows.json")
    nab.add_argument("--incident-type", default="degradation", help="incident_type of every window")
    nab.add_argument("--severity", default="medium", help="severity of every window")
    _mapping_arguments(nab, "{stem}", "{node_id}")

    for sub in (table, trace, nab):
        sub.add_argument("--out", type=Path, required=True, help="Parquet telemetry to write (manifest beside it)")
        sub.add_argument("--quiet", action="store_true", help="no per-file progress lines")


def _mapping(args: argparse.Namespace) -> Any:
    from training.importers.mapping import Mapping, parse_pairs

    columns = parse_pairs(args.map, "--map")
    if args.format == "nab":
        from training.importers.nab import DEFAULT_COLUMNS

        columns = DEFAULT_COLUMNS | columns
    return Mapping(
        columns, parse_pairs(args.unit, "--unit"), args.node_id, args.peer_id, tuple(args.ignore), args.timezone
    )


def _start_epoch_s(text: str) -> int:
    from training.importers.errors import InputError

    try:
        start = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"--start-utc {text!r}: not an ISO 8601 date-time, e.g. 2026-01-05T00:00:00Z") from exc
    if start.tzinfo is None:
        raise InputError(f"--start-utc {text!r}: give the offset, e.g. 2026-01-05T00:00:00Z")
    return int(start.timestamp())


def _import(args: argparse.Namespace) -> dict[str, Any]:
    from training.importers import mahimahi, nab, table
    from training.importers.errors import InputError
    from training.importers.output import progress_to_stderr, write_outputs

    progress = None if args.quiet else progress_to_stderr
    arguments = {k: v if isinstance(v, int | float | list | None) else str(v) for k, v in vars(args).items()}
    arguments = {k: [str(x) for x in v] if isinstance(v, list) else v for k, v in arguments.items() if k[0] != "_"}
    manifest: dict[str, Any] = {"format": args.format, "arguments": arguments}
    incidents = None
    if args.format == "mahimahi":
        if args.node_id is None or args.peer_id is None:
            missing = "node_id" if args.node_id is None else "peer_id"
            raise InputError(
                f"no {missing}: give --{missing.replace('_', '-')} ID, e.g. --node-id phone --peer-id '{{name}}'"
            )
        series = mahimahi.import_traces(
            args.paths,
            args.node_id,
            args.peer_id,
            args.interval_s,
            _start_epoch_s(args.start_utc),
            args.packet_bytes,
            progress,
        )
        manifest |= {
            "interval_s": args.interval_s,
            "columns": {
                "throughput_mbps": {
                    "source": f"deliveries per interval x {args.packet_bytes} bytes",
                    "unit": "Mbps",
                },
                "node_id": {"value": args.node_id},
                "peer_id": {"value": args.peer_id},
                "timestamp": {"source": f"interval start, trace millisecond 0 = {args.start_utc}"},
            },
        }
    elif args.format == "table":
        series, columns = table.import_tables(args.paths, _mapping(args), progress)
        manifest |= {"columns": columns, "timezone": args.timezone}
    else:
        series, incidents, columns = nab.import_nab(
            args.data_root, args.labels, args.files, _mapping(args), args.incident_type, args.severity, progress
        )
        manifest |= {"labels": str(args.labels), "data_root": str(args.data_root), "columns": columns}
        manifest |= {"timezone": args.timezone, "incident_type": args.incident_type, "severity": args.severity}
    return write_outputs(args.out, series, manifest, incidents)


def run(args: argparse.Namespace) -> int:
    """Import, write the Parquet telemetry and its manifest, print one summary line; exit 2 on a mapping error."""
    from training.importers.errors import InputError
    from training.importers.output import MANIFEST_SUFFIX, sidecar

    try:
        manifest = _import(args)
    except InputError as exc:
        print(f"import: ERROR {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(f"import: ERROR cannot write {args.out}: {exc}", file=sys.stderr)
        return EXIT_INPUT
    line = (
        f"imported {manifest['rows']:,} rows, {len(manifest['series'])} series, columns "
        f"{', '.join(manifest['columns_written'])} -> {manifest['output']}"
    )
    if "incidents" in manifest:
        line += f"; {manifest['incidents']['count']} incidents -> {manifest['incidents']['output']}"
    print(line + f"; manifest {sidecar(args.out, MANIFEST_SUFFIX)}")
    return EXIT_OK

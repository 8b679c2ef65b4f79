"""The `python -m training` command line: a registry of subcommands, each a module with add_arguments and run."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand name -> module. A module has a one-line docstring (the help text),
# add_arguments(parser) and run(args) -> int (the exit code). Import heavy libraries inside run().
SUBCOMMANDS: dict[str, str] = {
    "validate": "training.commands.validate",
    "datagen": "training.commands.datagen",
    "train": "training.commands.train",
    "evaluate": "training.commands.evaluate",
    "import": "training.commands.import_",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per registered subcommand."""
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        summary = (module.__doc__ or name).strip().splitlines()[0]
        sub = subparsers.add_parser(name, help=summary, description=summary)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand; returns its exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

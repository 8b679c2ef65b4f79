"""The `python -m training` command line: one subcommand per module of training.commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Protocol

from training.commands import datagen, evaluate, import_, train, validate


class Subcommand(Protocol):
    """A subcommand module: a one-line docstring (its help), its arguments, and run -> exit code.

    It imports heavy libraries (TensorFlow, onnxruntime) inside run(), so the parser builds without them.
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the subcommand's arguments to its parser."""
        ...

    def run(self, args: argparse.Namespace) -> int:
        """Run it; returns the exit code."""
        ...


SUBCOMMANDS: dict[str, Subcommand] = {
    "validate": validate,
    "datagen": datagen,
    "train": train,
    "evaluate": evaluate,
    "import": import_,
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per subcommand."""
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
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

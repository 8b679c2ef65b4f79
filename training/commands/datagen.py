"""Generate synthetic DWCP telemetry (train and held-out test ranges) and incident labels."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `python -m training datagen`."""


def run(args: argparse.Namespace) -> int:
    """Generate."""
    return 0

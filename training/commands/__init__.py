"""Subcommands of `python -m training`, wired by name in training.cli.SUBCOMMANDS."""

"""Subcommands of `python -m training`, registered in training.cli.SUBCOMMANDS."""

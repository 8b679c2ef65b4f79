"""The one exception importers raise for a problem in the user's input: a message, never a traceback."""

from __future__ import annotations


class InputError(Exception):
    """The input cannot be imported as asked; the message names the file, column, unit or row."""

"""Logging that cannot flood: one line per kind of event per interval, with how many were left out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

DEFAULT_INTERVAL_S = 10.0


class RateLimitedLog:
    """Logs the first event of a kind at once, then at most one line per interval saying how many came since.

    A hostile client repeating one bad call thousands of times a second costs a few lines, not a traceback
    per call; the count in the next line says the flood happened. Kinds are few (an RPC and a reason), so
    the table of them stays small.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._kinds: dict[Hashable, tuple[float, int]] = {}  # kind -> (when last logged, events left out since)

    def log(self, level: int, kind: Hashable, message: str, *args: Any, exc_info: bool = False) -> None:
        """Log `message % args` unless a line of this kind was logged less than an interval ago."""
        now = self.clock()
        with self._lock:
            last = self._kinds.get(kind)
            if last is not None and now - last[0] < self.interval_s:
                self._kinds[kind] = (last[0], last[1] + 1)
                return
            self._kinds[kind] = (now, 0)
        left_out = last[1] if last is not None else 0
        if left_out:
            message += f" (and {left_out} more like it in the previous {self.interval_s:g} s)"
        self.logger.log(level, message, *args, exc_info=exc_info)

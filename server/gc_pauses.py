"""Garbage-collection pauses as a metric: each collection's generation and duration, taken from gc.callbacks.

A collection holds the GIL from start to end, so every request in flight waits for it: a pause here is a
stall no handler timer sees. The histogram lets an operator (and `make loadtest`) place a tail in the
collector or rule it out.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

GC_PAUSE_BUCKETS_S = tuple(ms / 1000.0 for ms in (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250))


class GcPauses:
    """dwcp_inference_gc_pause_seconds{generation}, recorded between start() and stop()."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "dwcp_inference_gc_pause_seconds",
            "Python garbage-collection pauses in seconds, by generation collected (0, 1, 2: 2 is a full "
            "collection); every thread waits while one runs.",
            ["generation"],
            buckets=GC_PAUSE_BUCKETS_S,
            registry=registry,
        )
        self._series = [self.histogram.labels(str(generation)) for generation in range(3)]
        self._started_s = 0.0  # one collection runs at a time in the interpreter: no nesting, no overlap

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_s = time.perf_counter()
        else:
            self._series[info["generation"]].observe(time.perf_counter() - self._started_s)

    def start(self) -> None:
        """Record every collection from now on."""
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def stop(self) -> None:
        """Stop recording (a stopped server leaves no callback behind in the process)."""
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

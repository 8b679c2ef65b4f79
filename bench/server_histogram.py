"""The server's own view of a run: its RPC-duration histogram scraped from /metrics before and after.

ghz's latencies include the client, HTTP/2 and the kernel on the shared cores; the server's histogram
(dwcp_inference_rpc_duration_seconds, from handler entry to answer) does not. Side by side they place a
stall: in the server when its own p99 is high too, outside it (scheduling, the client) when only ghz's is.
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

HISTOGRAM = "dwcp_inference_rpc_duration_seconds"
MODEL_HISTOGRAM = "dwcp_inference_model_execution_seconds"
GC_HISTOGRAM = "dwcp_inference_gc_pause_seconds"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Buckets:
    """Cumulative bucket counts of one method's RPC histogram, summed over codes and processes."""

    bounds_s: tuple[float, ...]  # upper bounds, ascending, the last one +Inf
    counts: tuple[float, ...]  # observations <= each bound

    def __sub__(self, earlier: Buckets) -> Buckets:
        if not earlier.bounds_s:  # the method had no series yet
            return self
        return Buckets(self.bounds_s, tuple(a - b for a, b in zip(self.counts, earlier.counts, strict=True)))

    @property
    def total(self) -> float:
        """Observations in the histogram."""
        return self.counts[-1] if self.counts else 0.0

    def quantile_ms(self, q: float) -> float:
        """The q-quantile in ms, interpolated linearly inside its bucket (Prometheus' histogram_quantile).

        NaN without observations; the largest finite bound when the quantile falls in the +Inf bucket.
        """
        if self.total <= 0:
            return math.nan
        rank = q * self.total
        lower_s, below = 0.0, 0.0
        for bound_s, count in zip(self.bounds_s, self.counts, strict=True):
            if count >= rank:
                if math.isinf(bound_s):
                    return lower_s * 1000.0
                inside = count - below
                share = (rank - below) / inside if inside > 0 else 1.0
                return (lower_s + (bound_s - lower_s) * share) * 1000.0
            lower_s, below = bound_s, count
        return lower_s * 1000.0


@dataclass(frozen=True)
class Totals:
    """A histogram's _sum and _count over the series matching some labels: the mean, exactly.

    The buckets start at 0.25 ms, too coarse to place a 0.03 ms model run; the sum is not.
    """

    sum_s: float
    count: float

    def __sub__(self, earlier: Totals) -> Totals:
        return Totals(self.sum_s - earlier.sum_s, self.count - earlier.count)

    @property
    def mean_ms(self) -> float:
        """Mean observation in ms; NaN without observations."""
        return self.sum_s / self.count * 1000.0 if self.count > 0 else math.nan


@dataclass(frozen=True)
class Snapshot:
    """The /metrics pages of every server process at one moment, each fetched and parsed once."""

    samples: tuple[Sample, ...]

    def buckets(self, method: str) -> Buckets:
        """`method`'s buckets of the RPC histogram, summed over codes and processes."""
        summed: dict[float, float] = {}
        for sample in self.samples:
            if sample.name == f"{HISTOGRAM}_bucket" and sample.labels.get("method") == method:
                bound = float(sample.labels["le"])
                summed[bound] = summed.get(bound, 0.0) + sample.value
        bounds = tuple(sorted(summed))
        return Buckets(bounds, tuple(summed[b] for b in bounds))

    def totals(self, family: str, labels: dict[str, str]) -> Totals:
        """Sum and count of `family`'s series whose labels include `labels`, over every process."""
        sums = {f"{family}_sum": 0.0, f"{family}_count": 0.0}
        for sample in self.samples:
            if sample.name in sums and all(sample.labels.get(k) == v for k, v in labels.items()):
                sums[sample.name] += sample.value
        return Totals(sums[f"{family}_sum"], sums[f"{family}_count"])


def parse_pages(*pages: str) -> Snapshot:
    """A snapshot of /metrics expositions (one per process)."""
    return Snapshot(tuple(s for page in pages for f in text_string_to_metric_families(page) for s in f.samples))


def snapshot(metrics_ports: Sequence[int], timeout_s: float = 5.0) -> Snapshot:
    """Fetch every server process's /metrics once; no ports (the echo server) give an empty snapshot."""
    pages = []
    for port in metrics_ports:
        with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=timeout_s) as response:
            pages.append(response.read().decode("utf-8"))
    return parse_pages(*pages)

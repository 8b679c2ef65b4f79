"""Prometheus metrics of the server, registered on an injected CollectorRegistry (no global state).

The per-call figures (duration by code, items, over budget, in flight, model execution) are plain numbers
under one lock per method, exposed by a collector at scrape time: prometheus_client's Histogram takes a
lock per bucket and per sum and walks its buckets in Python, which cost more per call than the lookup here
(docs/performance.md, "Per-request work"). The exposition is the same: names, labels, buckets.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

M = TypeVar("M", Counter, Gauge)

# Resolve the 10 ms budget: fine steps below and around it, a coarse tail for outliers.
LATENCY_BUCKETS_S = tuple(
    ms / 1000.0 for ms in (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12.5, 15, 20, 25, 50, 100, 250, 1000)
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class HistogramCounts:
    """One histogram series: a count per bucket (the last is +Inf) and the sum; the caller holds a lock."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def add(self, value: float) -> None:
        """Count one observation in the first bucket whose upper bound is >= value (Prometheus' `le`)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def exposed(self) -> tuple[list[tuple[str, float]], float]:
        """(le, cumulative count) pairs ending with +Inf, and the sum: what a histogram family takes."""
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), float(cumulative)))
        return buckets, self.sum


class RpcSeries:
    """One method's per-call figures under one lock, taken when a call starts and when it ends."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.lock = threading.Lock()
        self.in_flight = 0
        self.durations: dict[str, HistogramCounts] = {}  # by gRPC status code name
        self.items = HistogramCounts(BATCH_BUCKETS)
        self.over_budget = 0

    def begin(self) -> None:
        """A call of this method started."""
        with self.lock:
            self.in_flight += 1

    def end(self, code: str, duration_s: float, items: int) -> None:
        """A call that began ended with `code` after `duration_s`, having answered `items`."""
        with self.lock:
            self.in_flight -= 1
            self._record(code, duration_s, items)

    def observe(self, code: str, duration_s: float, items: int) -> None:
        """A call that never began here (refused by admission) ended with `code`."""
        with self.lock:
            self._record(code, duration_s, items)

    def _record(self, code: str, duration_s: float, items: int) -> None:
        durations = self.durations.get(code)
        if durations is None:
            durations = self.durations[code] = HistogramCounts(LATENCY_BUCKETS_S)
        durations.add(duration_s)
        if items:
            self.items.add(items)
        if duration_s > self.budget_s:
            self.over_budget += 1


class ModelTimer:
    """The execution-time histogram of one model version; observe() is what LoadedModel calls per run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.durations = HistogramCounts(LATENCY_BUCKETS_S)

    def observe(self, duration_s: float) -> None:
        """One onnxruntime run took `duration_s`."""
        with self.lock:
            self.durations.add(duration_s)


class _PerCallCollector(Collector):
    """Exposes the RpcSeries and ModelTimers of one Metrics at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        durations = HistogramMetricFamily(
            "dwcp_inference_rpc_duration_seconds",
            "Server-side RPC latency in seconds (decode, validate, run, encode), by method and gRPC status code.",
            labels=["method", "code"],
        )
        items = HistogramMetricFamily("dwcp_inference_batch_items", "Items per request, by method.", labels=["method"])
        over = CounterMetricFamily(
            "dwcp_inference_rpc_over_budget",
            "RPCs whose server-side latency exceeded the latency budget, by method.",
            labels=["method"],
        )
        in_flight = GaugeMetricFamily(
            "dwcp_inference_rpcs_in_flight", "RPCs being handled right now, by method.", labels=["method"]
        )
        for method, series in sorted(self.metrics.rpc_series.items()):
            with series.lock:
                by_code = {code: counts.exposed() for code, counts in series.durations.items()}
                item_counts = series.items.exposed() if sum(series.items.counts) else None
                over_budget, running = series.over_budget, series.in_flight
            for code, (buckets, total) in sorted(by_code.items()):
                durations.add_metric([method, code], buckets, total)
            if item_counts is not None:
                items.add_metric([method], *item_counts)
            if by_code:
                over.add_metric([method], over_budget)
            in_flight.add_metric([method], running)
        executions = HistogramMetricFamily(
            "dwcp_inference_model_execution_seconds",
            "Time of one onnxruntime run (one batch) in seconds, by model and version.",
            labels=["model", "version"],
        )
        for (model, version), timer in sorted(self.metrics.model_timers.items()):
            with timer.lock:
                buckets, total = timer.durations.exposed()
            executions.add_metric([model, version], buckets, total)
        yield from (durations, executions, over, items, in_flight)


class Metrics:
    """All server metrics; one instance per server, on the registry it is given."""

    def __init__(self, registry: CollectorRegistry, latency_budget_s: float) -> None:
        self.registry = registry
        self.latency_budget_s = latency_budget_s
        self.rpc_series: dict[str, RpcSeries] = {}
        self.model_timers: dict[tuple[str, str], ModelTimer] = {}
        self._created = threading.Lock()  # guards adding a method's or a model version's series
        registry.register(_PerCallCollector(self))
        self.model_loaded = Gauge(
            "dwcp_inference_model_loaded",
            "1 for the model version being served (labels name it), by model, version, rpc and ONNX sha256.",
            ["model", "version", "rpc", "sha256"],
            registry=registry,
        )
        self.model_reloads = Counter(
            "dwcp_inference_model_reloads",
            "Model version loads by model and result (success: swapped in; failure: rejected, old one kept).",
            ["model", "result"],
            registry=registry,
        )
        self.model_untrusted = Counter(
            "dwcp_inference_model_untrusted",
            "Model versions refused because no --trusted-keys-file key signed them, by model and reason "
            "(unsigned, unknown_key, bad_signature).",
            ["model", "reason"],
            registry=registry,
        )
        self.shed = Counter(
            "dwcp_inference_requests_shed",
            "Requests refused before any model ran, by method and reason (in_flight_limit, item_limit: "
            "RESOURCE_EXHAUSTED; deadline_passed, deadline_too_short: DEADLINE_EXCEEDED).",
            ["method", "reason"],
            registry=registry,
        )
        self.budget_s = Gauge(
            "dwcp_inference_latency_budget_seconds", "The configured per-RPC latency budget.", registry=registry
        )
        self.budget_s.set(latency_budget_s)
        # Labelled series resolved once: .labels() costs more than the observation, and refusals come in floods.
        self._series: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _of(self, metric: M, *labels: str) -> M:
        """The series of `metric` with these label values, looked up once and then cached."""
        key = (id(metric), labels)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = metric.labels(*labels)
        return series

    def rpc(self, method: str) -> RpcSeries:
        """The per-call series of `method` (created at its first call)."""
        series = self.rpc_series.get(method)
        if series is None:
            with self._created:
                series = self.rpc_series.setdefault(method, RpcSeries(self.latency_budget_s))
        return series

    def model_timer(self, model: str, version: str) -> ModelTimer:
        """The execution-time series of one model version."""
        with self._created:
            return self.model_timers.setdefault((model, version), ModelTimer())

    def observe_rpc(self, method: str, code: str, duration_s: float, items: int) -> None:
        """Record one finished RPC that was not begun with rpc(method).begin() (a refusal)."""
        self.rpc(method).observe(code, duration_s, items)

    def shed_of(self, method: str, reason: str) -> Counter:
        """The shed counter of one method and reason."""
        return self._of(self.shed, method, reason)

    def model_untrusted_of(self, model: str, reason: str) -> Counter:
        """The counter of versions of `model` refused as untrusted for `reason`."""
        return self._of(self.model_untrusted, model, reason)

    def model_swapped(self, model: str, rpc: str, old: tuple[str, str] | None, new: tuple[str, str]) -> None:
        """Record a successful load: the new (version, sha256) replaces `old`."""
        if old is not None:
            self.model_loaded.remove(model, old[0], rpc, old[1])
        self.model_loaded.labels(model, new[0], rpc, new[1]).set(1)
        self.model_reloads.labels(model, "success").inc()

    def model_rejected(self, model: str) -> None:
        """Record a version that failed to load."""
        self.model_reloads.labels(model, "failure").inc()


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> tuple[object, int]:
    """Serve the registry over HTTP on a background thread; returns (server with .shutdown(), bound port)."""
    httpd, _thread = start_http_server(port, addr=host, registry=registry)
    return httpd, int(httpd.server_port)

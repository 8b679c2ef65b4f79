"""Prometheus metrics of the server, registered on an injected CollectorRegistry (no global state)."""

from __future__ import annotations

from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

M = TypeVar("M", Counter, Gauge, Histogram)

# Resolve the 10 ms budget: fine steps below and around it, a coarse tail for outliers.
LATENCY_BUCKETS_S = tuple(
    ms / 1000.0 for ms in (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12.5, 15, 20, 25, 50, 100, 250, 1000)
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class Metrics:
    """All server metrics; one instance per server, on the registry it is given."""

    def __init__(self, registry: CollectorRegistry, latency_budget_s: float) -> None:
        self.registry = registry
        self.latency_budget_s = latency_budget_s
        self.rpc_duration_seconds = Histogram(
            "dwcp_inference_rpc_duration_seconds",
            "Server-side RPC latency in seconds (decode, validate, run, encode), by method and gRPC status code.",
            ["method", "code"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.model_execution_seconds = Histogram(
            "dwcp_inference_model_execution_seconds",
            "Time of one onnxruntime run (one batch) in seconds, by model and version.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.over_budget = Counter(
            "dwcp_inference_rpc_over_budget",
            "RPCs whose server-side latency exceeded the latency budget, by method.",
            ["method"],
            registry=registry,
        )
        self.batch_items = Histogram(
            "dwcp_inference_batch_items",
            "Items per request, by method.",
            ["method"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
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
        self.in_flight = Gauge(
            "dwcp_inference_rpcs_in_flight", "RPCs being handled right now, by method.", ["method"], registry=registry
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

    def observe_rpc(self, method: str, code: str, duration_s: float, items: int) -> None:
        """Record one finished RPC."""
        self._of(self.rpc_duration_seconds, method, code).observe(duration_s)
        if items:
            self._of(self.batch_items, method).observe(items)
        if duration_s > self.latency_budget_s:
            self._of(self.over_budget, method).inc()

    def shed_of(self, method: str, reason: str) -> Counter:
        """The shed counter of one method and reason."""
        return self._of(self.shed, method, reason)

    def model_untrusted_of(self, model: str, reason: str) -> Counter:
        """The counter of versions of `model` refused as untrusted for `reason`."""
        return self._of(self.model_untrusted, model, reason)

    def in_flight_of(self, method: str) -> Gauge:
        """The in-flight gauge of one method."""
        return self._of(self.in_flight, method)

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

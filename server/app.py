"""The server's lifecycle: bind, load models, report health, reload, drain; one thread-pool gRPC server."""

from __future__ import annotations

import logging
import socket
import threading
from functools import partial
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from artifacts.signing import load_trusted_keys
from dwcp.inference.v1 import inference_pb2 as pb
from server import security
from server.admission import AdmissionExecutor, AdmissionInterceptor, ItemBudget
from server.gc_pauses import GcPauses
from server.guard import register_guarded
from server.health import OVERALL_HEALTH, HealthServicer
from server.metrics import Metrics, serve_metrics
from server.ratelog import RateLimitedLog
from server.ready import write_ready_file
from server.reflection import enable_reflection
from server.rpcs import SPECS
from server.servicer import InferenceHandler, thread_behaviour
from server.settings import Settings, env_name, flag_name
from server.store import ModelStore
from server.wire import add_inference_service

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["InferenceService"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

# Keepalive pings the server accepts (docs/serving.md). gRPC core's default policy counts a ping sooner
# than 5 min after the last one (2 h with no call open) as a strike and closes the connection with GOAWAY
# "too_many_pings" past two strikes: an idle Go client pinging every 10 s lost its connections after 3
# pings. Clients may ping with no call open; the Go client pings at most every 10 s, so pings 5 s apart are
# permitted (half its floor, so network delay never makes one early), and two strikes stay the limit for a
# client pinging faster still.
KEEPALIVE_POLICY = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 2),
]


class InferenceApp:
    """One server: gRPC (inference, health, reflection), metrics HTTP, the model store and its reloader."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = Metrics(self.registry, settings.latency_budget_s)
        self.gc_pauses = GcPauses(self.registry)
        self.health = HealthServicer()
        self.refusals = RateLimitedLog(logging.getLogger("server.refusals"))
        self.info_pool = AdmissionExecutor(1)  # GetModelInfo's own thread and bound (--max-info-in-flight)
        trusted_keys = load_trusted_keys(settings.trusted_keys_file) if settings.trusted_keys_file else None
        self.store = ModelStore(
            settings.model_dir,
            self.metrics,
            settings.ort_intra_op_threads,
            settings.max_batch_items,
            self._set_health,
            trusted_keys,
        )
        self.handler = InferenceHandler(
            self.store,
            self.metrics,
            settings.max_batch_items,
            settings.min_deadline_s,
            self.refusals,
            ItemBudget(settings.max_items_in_flight, settings.reserved_items),
        )
        self.credentials = security.server_credentials(settings)  # fails before anything binds
        self.grpc_port = 0
        self.metrics_port = -1
        self._stopping = threading.Event()
        self._reload_requested = threading.Event()
        self._reloader = threading.Thread(target=self._reload_loop, name="model-reloader", daemon=True)
        self._grpc = _ThreadServer(self)
        self._metrics_httpd: Any = None

    def start(self) -> None:
        """Listen (NOT_SERVING), load the models, then report health and write the ready file."""
        self._set_health()
        s = self.settings
        try:
            self.grpc_port = self._grpc.start(f"{s.host}:{s.grpc_port}")
        except RuntimeError:  # grpcio says only "Failed to bind"; TLS files were checked before, so it is the port
            raise OSError(bind_failure(s.host, s.grpc_port, "grpc_port")) from None
        if s.metrics_port >= 0:
            try:
                self._metrics_httpd, self.metrics_port = serve_metrics(self.registry, s.host, s.metrics_port)
            except OSError as exc:
                self._grpc.stop(0)
                raise OSError(bind_failure(s.host, s.metrics_port, "metrics_port", exc)) from None
        log.info(
            "gRPC listening on %s:%d (%s, %d threads, at most %d in flight), metrics on port %d",
            s.host,
            self.grpc_port,
            security.describe(s),
            s.grpc_threads,
            s.max_in_flight,
            self.metrics_port,
        )
        self.gc_pauses.start()  # once nothing can fail to bind, so a failed start leaves no callback behind
        self.store.reload()  # calls _set_health when it swaps a model in
        loaded = ", ".join(f"{m.name}={m.version}" for m in self.store.models()) or "none"
        log.info("loaded models from %s: %s", s.model_dir.resolve(), loaded)
        self._reloader.start()
        if s.ready_file is not None:
            write_ready_file(s.ready_file, self.grpc_port, self.metrics_port)

    def request_reload(self) -> None:
        """Scan the model directory now (SIGHUP); safe from any thread or a signal handler."""
        self._reload_requested.set()

    def stop(self, grace_s: float | None = None) -> None:
        """Drain: report NOT_SERVING, refuse new RPCs, give in-flight ones the grace period, then close."""
        if self._stopping.is_set():
            return
        grace_s = self.settings.grace_period_s if grace_s is None else grace_s
        log.info("draining: NOT_SERVING, finishing in-flight RPCs within %.1f s", grace_s)
        self.health.enter_graceful_shutdown()  # NOT_SERVING for good: later set()s are ignored, watches end
        self._stopping.set()
        self._reload_requested.set()
        self._grpc.stop(grace_s)
        if self._metrics_httpd is not None:
            self._metrics_httpd.shutdown()
            self._metrics_httpd.server_close()
        if self._reloader.is_alive():
            self._reloader.join(timeout=grace_s + 5)
        self.gc_pauses.stop()
        log.info("stopped")

    def register(self, server: grpc.Server) -> None:
        """Add the inference, health and reflection services to a gRPC server."""
        pools = {"GetModelInfo": self.info_pool}
        add_inference_service(partial(thread_behaviour, self.handler, pools=pools), server)
        # The library services parse through server.guard: bad bytes are INVALID_ARGUMENT, logged rate-limited.
        register_guarded(partial(health_pb2_grpc.add_HealthServicer_to_server, self.health), server, self.refusals)
        names = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
        register_guarded(partial(enable_reflection, names), server, self.refusals)

    def grpc_options(self) -> list[tuple[str, int]]:
        """Channel options of the server; SO_REUSEPORT only when asked (it lets a second server steal a port).

        A request larger than max_receive_message_bytes is refused by gRPC (RESOURCE_EXHAUSTED) before it is
        decoded, so no request can make the server allocate more than that plus its batch limits; a request
        not yet read holds at most request_window_bytes of it in gRPC core.
        """
        options = [
            ("grpc.so_reuseport", self.settings.reuse_port),
            ("grpc.max_receive_message_length", self.settings.max_receive_message_bytes),
            *KEEPALIVE_POLICY,
        ]
        if self.settings.request_window_bytes:
            # gRPC core takes a call's request bytes into its own memory as far as the call's HTTP/2 window
            # lets the client send them, read or not. BDP probing grows that window on a fast link until whole
            # requests fit, so every call waiting for admission (or for its refusal) held its whole request:
            # peak RSS grew with the callers (docs/reliability.md, "Memory under sustained maximum batches").
            # A fixed window bounds what each waiting call holds; once the server reads a call, gRPC opens
            # the window to the message's size, so an admitted call is not slowed.
            options += [
                ("grpc.http2.bdp_probe", 0),
                ("grpc.http2.lookahead_bytes", self.settings.request_window_bytes),
            ]
        if self.settings.max_pending_rpcs:
            # gRPC core's backlog of calls the Python layer has not taken yet; past the hard limit it cancels
            # new calls itself. Soft = hard, or core sheds only a random share between the two.
            pending = self.settings.max_pending_rpcs
            options += [
                ("grpc.server.max_pending_requests", pending),
                ("grpc.server.max_pending_requests_hard_limit", pending),
            ]
        return options

    def add_port(self, server: grpc.Server, address: str) -> int:
        """Bind the gRPC port with TLS / mutual TLS credentials, or plaintext when that is allowed."""
        if self.credentials is None:
            return int(server.add_insecure_port(address))
        return int(server.add_secure_port(address, self.credentials))

    def _set_health(self) -> None:
        """Per-RPC entries (`<service>/<rpc>`) follow their model; the service and "" need all four."""
        loaded = {rpc: self.store.for_rpc(rpc) is not None for rpc in SPECS}
        for rpc, ok in loaded.items():
            self.health.set(f"{SERVICE_NAME}/{rpc}", SERVING if ok else NOT_SERVING)
        everything = SERVING if all(loaded.values()) else NOT_SERVING
        self.health.set(SERVICE_NAME, everything)
        self.health.set(OVERALL_HEALTH, everything)

    def _reload_loop(self) -> None:
        interval_s = self.settings.reload_interval_s if self.settings.reload_interval_s > 0 else None
        while not self._stopping.is_set():
            self._reload_requested.wait(timeout=interval_s)
            self._reload_requested.clear()
            if self._stopping.is_set():
                return
            try:
                self.store.reload()
            except Exception:  # the directory may vanish mid-scan; the next poll tries again
                log.exception("model reload failed")


def bind_failure(host: str, port: int, field: str, cause: OSError | None = None) -> str:
    """Why `host:port` cannot be bound, naming the setting that chose it (flag and environment variable)."""
    if cause is None:
        cause = _probe_bind(host, port)
    reason = cause.strerror if cause is not None and cause.strerror else "the address cannot be bound"
    return (
        f"cannot listen on {host}:{port}: {reason}; is another server running on port {port}? "
        f"Choose another with {flag_name(field)} or {env_name(field)} (0 picks a free port)"
    )


def _probe_bind(host: str, port: int) -> OSError | None:
    """The OSError a plain bind of host:port raises now, if any (grpcio hides its own)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host.strip("[]"), port))
    except OSError as exc:
        return exc
    return None


class _ThreadServer:
    """grpc.server with a thread pool behind admission: past --max-in-flight, RESOURCE_EXHAUSTED and a shed count."""

    def __init__(self, app: InferenceApp) -> None:
        self.app = app
        self.executor = AdmissionExecutor(app.settings.grpc_threads)
        side_pools = {"GetModelInfo": (app.info_pool, app.settings.max_info_in_flight)}
        admission = AdmissionInterceptor(
            SERVICE_NAME, self.executor, app.settings.max_in_flight, app.metrics, side_pools
        )
        # No maximum_concurrent_rpcs: grpcio's own cap refused RESOURCE_EXHAUSTED after admission had let a
        # call in, uncounted by the shed counter and the histogram (issue 17: clients saw 3,787 refusals, the
        # counter 3,652). Admission is the only load refusal now; docs/serving.md says what bounds the rest.
        self.server = grpc.server(self.executor, interceptors=[admission], options=app.grpc_options())
        app.register(self.server)

    def start(self, address: str) -> int:
        port = self.app.add_port(self.server, address)
        self.server.start()
        return port

    def stop(self, grace_s: float) -> None:
        self.server.stop(grace_s).wait()
        self.executor.shutdown(wait=False)
        self.app.info_pool.shutdown(wait=False)

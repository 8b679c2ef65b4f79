"""grpc.health.v1 Check and Watch that never sends while holding its lock (grpcio-health-checking's does)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
OVERALL_HEALTH = ""

Send = Callable[[Any], None]


class _Watcher:
    """One open Watch stream: sends the service's current status whenever it differs from the last sent."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.sent: int | None = None
        self.lock = threading.Lock()  # orders this stream's sends; the servicer's lock is never held here

    def update(self, current: Callable[[], int], end: bool = False) -> None:
        with self.lock:
            status = current()  # read under this lock, so the last send is always the latest status
            if status != self.sent:
                self.send(health_pb2.HealthCheckResponse(status=status))
                self.sent = status
            if end:
                self.send(None)  # finishes the RPC with OK


class HealthServicer(health_pb2_grpc.HealthServicer):
    """A status per service name, answered by Check and streamed by Watch; set() and drain update it.

    grpcio-health-checking's servicer sends Watch updates under its lock, while gRPC runs a closed stream's
    callback, which takes that lock, on the thread that completes sends: a Watch stream ending while another
    was being answered deadlocked the server (the drain hung with Go clients disconnecting). Here sends
    happen after the lock is released. From the drain on, every service is NOT_SERVING and Watch streams end
    after saying so, so open watches do not hold the drain for its whole grace period.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, int] = {OVERALL_HEALTH: SERVING}
        self._watchers: dict[str, set[_Watcher]] = {}
        self._draining = False

    def _current(self, service: str) -> Callable[[], int]:
        def status() -> int:
            with self._lock:
                return self._status.get(service, SERVICE_UNKNOWN)

        return status

    def Check(self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext) -> Any:  # noqa: N802 (proto name)
        with self._lock:
            status = self._status.get(request.service)
        if status is None:
            context.set_code(grpc.StatusCode.NOT_FOUND)
            return health_pb2.HealthCheckResponse()
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(  # type: ignore[override]  # noqa: N802 (proto name); gRPC passes `send` (non-blocking)
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext, send: Send
    ) -> None:
        service, watcher = request.service, _Watcher(send)
        with self._lock:
            self._watchers.setdefault(service, set()).add(watcher)
            draining = self._draining
        context.add_callback(lambda: self._forget(service, watcher))
        watcher.update(self._current(service), end=draining)

    Watch.experimental_non_blocking = True  # type: ignore[attr-defined]  # gRPC passes `send`; no thread held

    def _forget(self, service: str, watcher: _Watcher) -> None:
        with self._lock:
            self._watchers.get(service, set()).discard(watcher)

    def set(self, service: str, status: int) -> None:
        """Set a service's status and tell its watchers; ignored once the drain has begun."""
        with self._lock:
            if self._draining:
                return
            self._status[service] = status
            watchers = list(self._watchers.get(service, ()))
        for watcher in watchers:
            watcher.update(self._current(service))

    def enter_graceful_shutdown(self) -> None:
        """NOT_SERVING for good: every service says so, every Watch stream says so and ends."""
        with self._lock:
            if self._draining:
                return
            self._draining = True
            for service in self._status:
                self._status[service] = NOT_SERVING
            watchers = [(s, w) for s, ws in self._watchers.items() for w in ws]
        for service, watcher in watchers:
            watcher.update(self._current(service), end=True)

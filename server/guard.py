"""Services registered with a request parser that never fails: bad bytes become INVALID_ARGUMENT, not INTERNAL.

gRPC answers a request it cannot deserialise with INTERNAL and logs a traceback per call. Our own service
parses through server.wire; the library services (grpc.health.v1, reflection) are registered through
`register_guarded`, which wraps each handler the library hands to the server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from server.ratelog import RateLimitedLog
from server.wire import Undecodable

log = logging.getLogger(__name__)


class _Recorder:
    """Stands in for the server while a library registers its service: keeps the method handlers."""

    def __init__(self) -> None:
        self.services: list[tuple[str, dict[str, grpc.RpcMethodHandler]]] = []

    def add_generic_rpc_handlers(self, _handlers: Any) -> None:
        pass  # the same handlers come by name through add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.services.append((service, handlers))


def _safe(deserialize: Callable[[bytes], Any] | None, method: str) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data) if deserialize is not None else data
        except Exception as exc:  # protobuf raises DecodeError, ValueError or RuntimeError for bad bytes
            return Undecodable(f"{method} request", str(exc) or type(exc).__name__)

    return parse


def _keep_attributes(wrapper: Any, behaviour: Any) -> Any:
    for attribute in ("experimental_non_blocking", "experimental_thread_pool"):
        if hasattr(behaviour, attribute):
            setattr(wrapper, attribute, getattr(behaviour, attribute))
    return wrapper


class _Guard:
    def __init__(self, method: str, refusals: RateLimitedLog) -> None:
        self.method = method
        self.refusals = refusals

    def refuse(self, request: Undecodable, context: grpc.ServicerContext) -> None:
        message = request.error().reason
        self.refusals.log(logging.WARNING, (self.method, "undecodable"), "refused %s: %s", self.method, message)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request: {message}")

    def unary(self, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(request: Any, context: grpc.ServicerContext, *rest: Any) -> Any:
            if isinstance(request, Undecodable):
                self.refuse(request, context)
            return behaviour(request, context, *rest)

        return _keep_attributes(guarded, behaviour)

    def stream(self, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(requests: Iterator[Any], context: grpc.ServicerContext, *rest: Any) -> Any:
            def checked() -> Iterator[Any]:
                for request in requests:
                    if isinstance(request, Undecodable):
                        self.refuse(request, context)
                    yield request

            return behaviour(checked(), context, *rest)

        return _keep_attributes(guarded, behaviour)


def guarded_handler(method: str, handler: grpc.RpcMethodHandler, refusals: RateLimitedLog) -> grpc.RpcMethodHandler:
    """`handler` with a parser that never raises, and undecodable requests answered INVALID_ARGUMENT."""
    guard = _Guard(method, refusals)
    wrap = guard.stream if handler.request_streaming else guard.unary
    kinds = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
    behaviours = {k: wrap(getattr(handler, k)) for k in kinds if getattr(handler, k) is not None}
    return handler._replace(request_deserializer=_safe(handler.request_deserializer, method), **behaviours)  # type: ignore[attr-defined, no-any-return]


def register_guarded(register: Callable[[Any], None], server: grpc.Server, refusals: RateLimitedLog) -> None:
    """Run a library's `register(server)` and add its services to `server` with guarded handlers."""
    recorder = _Recorder()
    register(recorder)
    for service, handlers in recorder.services:
        guarded = {name: guarded_handler(f"/{service}/{name}", h, refusals) for name, h in handlers.items()}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, guarded),))
        server.add_registered_method_handlers(service, guarded)

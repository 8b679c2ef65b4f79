"""Admission control: a bound on in-flight inference RPCs, and no model run for a deadline that cannot be met."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc

from server.metrics import Metrics

# Shed reasons, the `reason` label of dwcp_inference_requests_shed_total.
OVERLOADED = "in_flight_limit"
DEADLINE_PASSED = "deadline_passed"
DEADLINE_TOO_SHORT = "deadline_too_short"
ITEM_LIMIT = "item_limit"


class RefusedError(Exception):
    """A request refused before any model runs; `code` and `message` are what the caller sees."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason


def check_deadline(time_remaining_s: float | None, floor_s: float) -> None:
    """Refuse a request whose deadline has passed, or leaves less than `floor_s`, with DEADLINE_EXCEEDED."""
    if time_remaining_s is None:
        return
    if time_remaining_s <= 0:
        message = "the deadline passed before the request ran"
        raise RefusedError(grpc.StatusCode.DEADLINE_EXCEEDED, message, DEADLINE_PASSED)
    if time_remaining_s < floor_s:
        raise RefusedError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"{time_remaining_s * 1000:.3f} ms left is below the {floor_s * 1000:g} ms an answer needs",
            DEADLINE_TOO_SHORT,
        )


class ItemBudget:
    """Admission by cost: the items (links, nodes, windows) of the inference RPCs running at once.

    A call is admitted while the items in flight plus its own stay within `max_items`; a call of more than
    `reserved_items` may not use the last `reserved_items` of it, so a flood of large batches is shed while a
    single-item caller still gets in. Counting calls alone let four clients of 1,024-link batches take every
    thread and slow a one-item caller sevenfold.
    """

    def __init__(self, max_items: int, reserved_items: int) -> None:
        self.max_items = max_items
        self.reserved_items = min(reserved_items, max_items)
        self._lock = threading.Lock()
        self.in_flight = 0

    def acquire(self, items: int) -> None:
        """Take `items` from the budget, or raise RefusedError (RESOURCE_EXHAUSTED, item_limit)."""
        limit = self.max_items if items <= self.reserved_items else self.max_items - self.reserved_items
        with self._lock:
            if self.in_flight + items <= limit or self.in_flight == 0:  # an idle server runs any allowed batch
                self.in_flight += items
                return
            in_flight = self.in_flight
        raise RefusedError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"server overloaded: {in_flight} items in flight, {items} more would pass the {limit} allowed to a "
            f"call of this size; retry later or send smaller batches",
            ITEM_LIMIT,
        )

    def release(self, items: int) -> None:
        """Give back what `acquire` took."""
        with self._lock:
            self.in_flight -= items


class _Refusal:
    """The behaviour of one refused RPC: RESOURCE_EXHAUSTED at once, without reading the model or the request.

    gRPC runs a behaviour carrying `experimental_thread_pool` on that pool instead of the server's, so
    refusals never wait behind the admitted work that made the server refuse them. The refusal is recorded in
    the RPC histogram (code RESOURCE_EXHAUSTED) like any other outcome, from the moment admission saw it.
    """

    def __init__(self, pool: ThreadPoolExecutor, metrics: Metrics, rpc: str, start_s: float) -> None:
        self.experimental_thread_pool = pool
        self.metrics, self.rpc, self.start_s = metrics, rpc, start_s

    def __call__(self, _request: Any, context: grpc.ServicerContext) -> None:
        code = grpc.StatusCode.RESOURCE_EXHAUSTED
        self.metrics.observe_rpc(self.rpc, code.name, time.perf_counter() - self.start_s, 0)
        context.abort(code, "server overloaded: too many requests in flight; retry later")


class AdmissionExecutor(ThreadPoolExecutor):
    """The gRPC thread pool, counting the RPCs it holds (queued or running) so admission can bound them.

    Every submitted task runs to its end, even for a client that went away, so the count cannot leak.
    `refusals` is the one-thread pool refused RPCs run on instead (see _Refusal).
    """

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="grpc")
        self.refusals = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grpc-refuse")
        self._lock = threading.Lock()
        self._held = 0

    @property
    def held(self) -> int:
        """RPCs queued or running in the pool now."""
        return self._held

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            self._held += 1

        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._held -= 1

        return super().submit(run)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.refusals.shutdown(wait=wait, cancel_futures=cancel_futures)
        super().shutdown(wait=wait, cancel_futures=cancel_futures)


class AdmissionInterceptor(grpc.ServerInterceptor):
    """Refuses an inference RPC with RESOURCE_EXHAUSTED when `max_in_flight` RPCs are already held.

    This is the only place an RPC is refused for load before it is parsed, so each such refusal is counted
    once: in the shed counter (reason in_flight_limit) here, in the RPC histogram by _Refusal.

    gRPC calls interceptors on its polling thread just before it hands the RPC to the pool, so the count
    seen here includes the queue. Health and reflection RPCs are always admitted (probes must not fail
    under load; they are cheap).
    """

    def __init__(
        self,
        service: str,
        executor: AdmissionExecutor,
        max_in_flight: int,
        metrics: Metrics,
        side_pools: dict[str, tuple[AdmissionExecutor, int]] | None = None,
    ) -> None:
        self.prefix = f"/{service}/"
        self.executor = executor
        self.max_in_flight = max_in_flight
        # RPC name -> (its own pool, its own bound): such RPCs never count against inference's bound.
        self.side_pools = {f"/{service}/{rpc}": bound for rpc, bound in (side_pools or {}).items()}
        self.metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method  # type: ignore[attr-defined]
        pool, bound = self.side_pools.get(method, (self.executor, self.max_in_flight))
        if method.startswith(self.prefix) and pool.held >= bound:
            rpc = method[len(self.prefix) :]
            self.metrics.shed_of(rpc, OVERLOADED).inc()
            refusal = _Refusal(pool.refusals, self.metrics, rpc, time.perf_counter())
            return grpc.unary_unary_rpc_method_handler(refusal)
        return continuation(handler_call_details)

"""The thin gRPC layer: each RPC's answer (inference per spec, GetModelInfo) inside shared metrics and statuses."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from functools import partial
from typing import Any

import grpc
from google.protobuf.message import Message

from artifacts.limits import MAX_NAME_BYTES
from dwcp.inference.v1 import inference_pb2 as pb
from server.admission import ItemBudget, RefusedError, check_deadline
from server.codec import encode_request
from server.errors import FieldViolation, rich_status
from server.metrics import Metrics
from server.ratelog import RateLimitedLog
from server.responses import model_info
from server.rpc_spec import RpcSpec
from server.rpcs import SPECS
from server.store import ModelStore
from server.validation import ValidationError
from server.wire import Undecodable

log = logging.getLogger(__name__)


class RpcError(Exception):
    """An RPC outcome other than OK: the status code, the message the caller sees and the fields at fault."""

    def __init__(self, code: grpc.StatusCode, message: str, violations: Sequence[FieldViolation] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.violations = tuple(violations)

    def status(self) -> grpc.Status:
        """The status to abort with: the message plus a google.rpc.BadRequest detail naming the fields."""
        return rich_status(self.code, self.message, self.violations)


Answer = Callable[[Any, float | None], tuple[Message, int]]
"""One RPC's own work: (request, seconds left to its deadline) -> (response, items answered)."""


class InferenceHandler:
    """Every RPC of the service by name: the shared part (metrics, statuses) around each RPC's own answer."""

    def __init__(
        self,
        store: ModelStore,
        metrics: Metrics,
        max_batch_items: int,
        min_deadline_s: float = 0.0,
        errors: RateLimitedLog | None = None,
        items: ItemBudget | None = None,
    ) -> None:
        self.items = items if items is not None else ItemBudget(1 << 62, 0)  # unbounded unless given
        self.errors = errors if errors is not None else RateLimitedLog(log)  # a traceback per interval, not per call
        self.store = store
        self.metrics = metrics
        self.max_batch_items = max_batch_items
        self.min_deadline_s = min_deadline_s
        self.answers: dict[str, Answer] = {rpc: partial(self.infer, spec) for rpc, spec in SPECS.items()}
        self.answers["GetModelInfo"] = self.model_info

    def handle(
        self,
        rpc: str,
        request: Any,
        time_remaining_s: float | None = None,
        caller: grpc.ServicerContext | None = None,
    ) -> Message:
        """Answer one RPC or raise RpcError; never lets another exception reach the caller.

        `time_remaining_s` is what is left of the caller's deadline (None: no deadline). An answer whose
        `caller` is gone by the end is recorded as the caller saw it: CANCELLED, or DEADLINE_EXCEEDED.
        """
        start_s, code, items = time.perf_counter(), "OK", 0
        series = self.metrics.rpc(rpc)
        series.begin()
        try:
            if isinstance(request, Undecodable):
                raise request.error()
            response, items = self.answers[rpc](request, time_remaining_s)
            return response
        except ValidationError as exc:
            code = grpc.StatusCode.INVALID_ARGUMENT.name
            violation = FieldViolation(exc.field, exc.reason)
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, str(exc), (violation,)) from None
        except RefusedError as exc:
            code = exc.code.name
            self.metrics.shed_of(rpc, exc.reason).inc()
            raise RpcError(exc.code, exc.message) from None
        except RpcError as exc:
            code = exc.code.name
            raise
        except Exception as exc:
            self.errors.log(logging.ERROR, (rpc, type(exc).__name__), "%s failed", rpc, exc_info=True)
            code = grpc.StatusCode.INTERNAL.name
            raise RpcError(grpc.StatusCode.INTERNAL, "internal error; see the server log") from None
        finally:
            if code == "OK" and caller is not None and not caller.is_active():
                remaining_s = caller.time_remaining()
                expired = remaining_s is not None and remaining_s <= 0
                code = grpc.StatusCode.DEADLINE_EXCEEDED.name if expired else grpc.StatusCode.CANCELLED.name
            series.end(code, time.perf_counter() - start_s, items)

    def infer(self, spec: RpcSpec, request: Message, time_remaining_s: float | None) -> tuple[Message, int]:
        """An inference RPC: refused unrun if it cannot finish in time, else decoded, run and encoded."""
        check_deadline(time_remaining_s, self.min_deadline_s)
        model = self.store.for_rpc(spec.rpc)
        if model is None:
            raise RpcError(grpc.StatusCode.UNAVAILABLE, f"no valid model for {spec.rpc} is loaded; see the server log")
        cost = len(getattr(request, spec.batch_field))  # known once parsed, before any validation or run
        self.items.acquire(cost)
        try:
            ids, inputs = encode_request(
                spec, request, model.manifest, model.range_check, self.max_batch_items, model.layout
            )
            return spec.build_response(ids, model.run(inputs), model.manifest), len(ids)
        finally:
            self.items.release(cost)

    def model_info(self, request: pb.GetModelInfoRequest, time_remaining_s: float | None) -> tuple[Message, int]:
        """GetModelInfo: every served version, or the one named, described from its manifest.

        A name longer than any model's may have is refused, not echoed (a 16 KB name echoed in the status
        exceeded gRPC's metadata limit); an expired deadline is not answered.
        """
        check_deadline(time_remaining_s, 0.0)
        size = len(request.model_name.encode("utf-8"))
        if size > MAX_NAME_BYTES:
            violation = FieldViolation("model_name", f"{size} bytes, more than the {MAX_NAME_BYTES} a name may have")
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"model_name: {violation.reason}", (violation,))
        models = self.store.models()
        if request.model_name:
            models = [m for m in models if m.name == request.model_name]
            if not models:
                violation = FieldViolation("model_name", f"no served model is named {request.model_name!r}")
                raise RpcError(grpc.StatusCode.NOT_FOUND, f"model_name: {violation.reason}", (violation,))
        return pb.GetModelInfoResponse(models=[model_info(m, self.max_batch_items) for m in models]), 0


Behaviour = Callable[[Any, Any], Any]


def thread_behaviour(handler: InferenceHandler, rpc: str, pools: Mapping[str, Executor] | None = None) -> Behaviour:
    """What the server runs for `rpc`: the handler's answer, or its status through context.abort.

    An RPC named in `pools` runs on that pool instead of the server's (gRPC's experimental_thread_pool):
    GetModelInfo has its own, so it never takes a thread or an admission slot from inference.
    """

    if rpc not in handler.answers:  # at start-up, not at the first call
        raise LookupError(f"the proto's {rpc} has no spec in server.rpcs and no handler in server.servicer")

    def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return handler.handle(rpc, request, context.time_remaining(), context)
        except RpcError as failure:
            context.abort_with_status(failure.status())

    pool = (pools or {}).get(rpc)
    if pool is not None:
        behaviour.experimental_thread_pool = pool  # type: ignore[attr-defined]
    return behaviour

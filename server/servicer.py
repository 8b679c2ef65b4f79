"""The thin gRPC layer: decode, validate, run, encode; every RPC is the shared handler under its own name."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf.message import Message

from dwcp.inference.v1 import inference_pb2 as pb
from server.admission import RefusedError, check_deadline
from server.codec import encode_request
from server.errors import FieldViolation, rich_status
from server.metrics import Metrics
from server.runtime import LoadedModel
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


def model_info(model: LoadedModel, max_batch_items: int) -> pb.ModelInfo:
    """GetModelInfo's description of one served version, straight from its manifest."""
    m = model.manifest
    return pb.ModelInfo(
        model=pb.ModelRef(name=m.name, version=m.version),
        rpc=m.rpc,
        created_utc=m.created_utc,
        inputs=[
            pb.FeatureInfo(
                name=f.name, unit=f.unit, min_value=f.min_value, max_value=f.max_value, description=f.description
            )
            for f in m.input.features
        ],
        outputs=[pb.OutputInfo(name=o.name, unit=o.unit, description=o.description) for o in m.outputs],
        thresholds=m.thresholds,
        metrics=m.metrics,
        onnx_sha256=model.sha256,
        training_data_fingerprint=m.training_data_fingerprint,
        max_batch_items=max_batch_items,
    )


class InferenceHandler:
    """What every RPC does, independent of the gRPC flavour (sync or asyncio); records the RPC metrics."""

    def __init__(self, store: ModelStore, metrics: Metrics, max_batch_items: int, min_deadline_s: float = 0.0) -> None:
        self.store = store
        self.metrics = metrics
        self.max_batch_items = max_batch_items
        self.min_deadline_s = min_deadline_s

    def handle(self, rpc: str, request: Any, time_remaining_s: float | None = None) -> Message:
        """Answer one RPC or raise RpcError; never lets another exception reach the caller.

        `time_remaining_s` is what is left of the caller's deadline (None: no deadline); a request that
        cannot be answered in time is refused before its model runs.
        """
        start_s, code, items = time.perf_counter(), "OK", 0
        in_flight = self.metrics.in_flight_of(rpc)
        in_flight.inc()
        try:
            if isinstance(request, Undecodable):
                raise request.error()
            if rpc == "GetModelInfo":
                return self._model_info(request)
            check_deadline(time_remaining_s, self.min_deadline_s)
            model = self.store.for_rpc(rpc)
            if model is None:
                raise RpcError(grpc.StatusCode.UNAVAILABLE, f"no valid model for {rpc} is loaded; see the server log")
            ids, inputs = encode_request(
                model.spec, request, model.manifest, model.range_check, self.max_batch_items, model.layout
            )
            items = len(ids)
            return model.spec.build_response(ids, model.run(inputs), model.manifest)
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
        except Exception:
            log.exception("%s failed", rpc)
            code = grpc.StatusCode.INTERNAL.name
            raise RpcError(grpc.StatusCode.INTERNAL, "internal error; see the server log") from None
        finally:
            in_flight.dec()
            self.metrics.observe_rpc(rpc, code, time.perf_counter() - start_s, items)

    def _model_info(self, request: pb.GetModelInfoRequest) -> pb.GetModelInfoResponse:
        models = self.store.models()
        if request.model_name:
            models = [m for m in models if m.name == request.model_name]
            if not models:
                violation = FieldViolation("model_name", f"no served model is named {request.model_name!r}")
                raise RpcError(grpc.StatusCode.NOT_FOUND, f"model_name: {violation.reason}", (violation,))
        return pb.GetModelInfoResponse(models=[model_info(m, self.max_batch_items) for m in models])


Behaviour = Callable[[Any, Any], Any]


def thread_behaviour(handler: InferenceHandler, rpc: str) -> Behaviour:
    """What the thread-pool server runs for `rpc`: the handler's answer, or its status through context.abort."""

    def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return handler.handle(rpc, request, context.time_remaining())
        except RpcError as failure:
            context.abort_with_status(failure.status())

    return behaviour


def aio_behaviour(handler: InferenceHandler, rpc: str) -> Behaviour:
    """The same for the asyncio server: the handler runs on the event loop (onnxruntime drops the GIL)."""

    async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return handler.handle(rpc, request, context.time_remaining())
        except RpcError as failure:
            status = failure.status()
            await context.abort(status.code, status.details, status.trailing_metadata)

    return behaviour

"""Registering the inference service with a request parser that never fails: bad bytes become INVALID_ARGUMENT."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from dwcp.inference.v1 import inference_pb2 as pb
from server.validation import ValidationError

SERVICE = pb.DESCRIPTOR.services_by_name["InferenceService"]


@dataclass(frozen=True)
class Undecodable:
    """Request bytes that are not a valid message of the RPC's request type (e.g. invalid UTF-8 in a string)."""

    type_name: str
    reason: str

    def error(self) -> ValidationError:
        """What the caller is told with INVALID_ARGUMENT: the request as a whole is the refused field."""
        return ValidationError("request", f"not a valid {self.type_name} message ({self.reason})")


def parser(kind: type[Message]) -> Callable[[bytes], Message | Undecodable]:
    """kind.FromString, except that undecodable bytes yield Undecodable instead of raising.

    gRPC answers an exception raised while deserialising with INTERNAL; a malformed request is the
    caller's error, so the handler answers it with INVALID_ARGUMENT instead.
    """

    def parse(data: bytes) -> Message | Undecodable:
        try:
            return kind.FromString(data)
        except (DecodeError, ValueError, RuntimeError) as exc:
            return Undecodable(kind.DESCRIPTOR.name, str(exc) or type(exc).__name__)

    return parse


def add_inference_service(behaviour: Callable[[str], Callable[[Any, Any], Any]], server: Any) -> None:
    """Register every RPC of the service, answered by `behaviour(rpc_name)`, with the never-failing parser.

    Like the generated add_InferenceServiceServicer_to_server, but the method list comes from the
    descriptor, so an RPC added to the proto is routed without a hand-written servicer method.
    """
    handlers = {}
    for method in SERVICE.methods:
        request = getattr(pb, method.input_type.name)
        response = getattr(pb, method.output_type.name)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            behaviour(method.name),
            request_deserializer=parser(request),
            response_serializer=response.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)

"""Statuses with structured details: google.rpc.BadRequest field violations beside the human message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One refused request field: its path (e.g. `links[3].samples[9].rtt_ms`) and why it was refused."""

    field: str
    reason: str


def rich_status(code: grpc.StatusCode, message: str, violations: Sequence[FieldViolation] = ()) -> grpc.Status:
    """A status whose trailer (`grpc-status-details-bin`) carries `violations` as one google.rpc.BadRequest.

    The message is sent unchanged, so a human (or grpcurl) reads the same text a program reads from the
    detail; with no violations the status has no details at all.
    """
    status = status_pb2.Status(code=code.value[0], message=message)
    if violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.reason) for v in violations
            ]
        )
        status.details.add().Pack(bad_request)
    return rpc_status.to_status(status)

"""Bad bytes to any service (inference, grpc.health.v1, reflection) are INVALID_ARGUMENT, logged rate-limited."""

from __future__ import annotations

import logging

import grpc
import pytest

from server.ratelog import RateLimitedLog
from tests.server.helpers import RunningServer

GARBAGE = b"\xff\xff\xff"  # a field tag that never ends: no message type parses it
UNARY = [
    "/grpc.health.v1.Health/Check",
    "/dwcp.inference.v1.InferenceService/DetectAnomaly",
    "/dwcp.inference.v1.InferenceService/GetModelInfo",
]


def _code(error: grpc.RpcError) -> grpc.StatusCode:
    return error.code()  # type: ignore[no-any-return]


@pytest.mark.parametrize("method", UNARY)
def test_garbage_to_a_unary_rpc_is_invalid_argument(server: RunningServer, method: str) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        server.channel.unary_unary(method)(GARBAGE, timeout=5)
    assert _code(refused.value) == grpc.StatusCode.INVALID_ARGUMENT


def test_garbage_to_health_watch_is_invalid_argument(server: RunningServer) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        list(server.channel.unary_stream("/grpc.health.v1.Health/Watch")(GARBAGE, timeout=5))
    assert _code(refused.value) == grpc.StatusCode.INVALID_ARGUMENT


def test_garbage_to_reflection_is_invalid_argument(server: RunningServer) -> None:
    reflection = server.channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    with pytest.raises(grpc.RpcError) as refused:
        list(reflection(iter([GARBAGE]), timeout=5))
    assert _code(refused.value) == grpc.StatusCode.INVALID_ARGUMENT


def test_a_thousand_garbage_health_checks_are_each_refused_and_logged_in_a_few_lines(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    check = server.channel.unary_unary("/grpc.health.v1.Health/Check")
    codes = []
    with caplog.at_level(logging.DEBUG):
        for _ in range(1000):
            try:
                check(GARBAGE, timeout=5)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(_code(exc))
    assert codes == [grpc.StatusCode.INVALID_ARGUMENT] * 1000
    # One line per 10 s interval at most (an earlier test's line may have opened this one): seconds, not minutes.
    assert len(caplog.records) <= 10, [r.getMessage() for r in caplog.records[:12]]
    assert [r for r in caplog.records if r.exc_info] == []  # no traceback


def test_the_rate_limited_log_says_how_many_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("test.ratelog"), interval_s=10, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.ratelog"):
        for step in range(30):  # one event a second for 30 s
            now[0] = float(step)
            limited.log(logging.WARNING, "bad", "bad request")
        limited.log(logging.WARNING, "other", "another kind")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "bad request",
        "bad request (and 9 more like it in the previous 10 s)",
        "bad request (and 9 more like it in the previous 10 s)",
        "another kind",
    ]

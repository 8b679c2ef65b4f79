"""GetModelInfo: a bounded model_name, deadlines honoured, and its own admission budget apart from inference."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from dwcp.inference.v1 import inference_pb2 as pb
from tests.server.helpers import RunningServer, build_request, random_inputs, running_server


def _violations(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    bad = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad)
    return [v.field for v in bad.field_violations]


def test_a_long_model_name_is_invalid_argument_naming_the_field(server: RunningServer) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        server.stub.GetModelInfo(pb.GetModelInfoRequest(model_name="m" * 20_000), timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(refused.value) == ["model_name"]
    assert "m" * 300 not in (refused.value.details() or "")  # not echoed back


def test_a_name_of_256_bytes_is_looked_up(server: RunningServer) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        server.stub.GetModelInfo(pb.GetModelInfoRequest(model_name="m" * 256), timeout=5)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_expired_deadline_is_not_answered(server: RunningServer) -> None:
    response, _items = server.app.handler.answers["GetModelInfo"](pb.GetModelInfoRequest(), 1.0)
    assert response.models  # type: ignore[attr-defined]  # answered while time is left
    with pytest.raises(Exception, match="deadline passed"):
        server.app.handler.answers["GetModelInfo"](pb.GetModelInfoRequest(), -0.001)


def test_outstanding_model_info_calls_never_shed_inference(model_dir: Path) -> None:
    with running_server(model_dir, max_in_flight=1, max_info_in_flight=2) as running:
        release, entered = threading.Event(), threading.Semaphore(0)
        answer = running.app.handler.answers["GetModelInfo"]

        def slow_info(request: Any, time_remaining_s: float | None) -> Any:
            entered.release()
            release.wait(10)
            return answer(request, time_remaining_s)

        running.app.handler.answers["GetModelInfo"] = slow_info
        futures = [running.stub.GetModelInfo.future(pb.GetModelInfoRequest(), timeout=20) for _ in range(20)]
        try:
            assert entered.acquire(timeout=10)  # one running on its own thread, the others queued or refused
            while running.app.info_pool.held < 2:
                time.sleep(0.01)
            request = build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1))
            for _ in range(5):  # inference's one slot is free: GetModelInfo never took it
                assert len(running.stub.DetectAnomaly(request, timeout=10).results) == 1
        finally:
            release.set()
        codes = []
        for future in futures:
            try:
                future.result()
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
        assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert codes.count(grpc.StatusCode.OK) >= 2
        shed = {"method": "GetModelInfo", "reason": "in_flight_limit"}
        assert running.registry.get_sample_value("dwcp_inference_requests_shed_total", shed) == codes.count(
            grpc.StatusCode.RESOURCE_EXHAUSTED
        )

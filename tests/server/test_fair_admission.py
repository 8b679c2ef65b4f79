"""Admission by cost: a flood of large batches is shed while a single-item caller is admitted and answered."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from server.admission import ItemBudget, RefusedError
from tests.server.helpers import build_request, random_inputs, running_server


def test_large_calls_may_not_take_the_reserve_small_calls_keep() -> None:
    budget = ItemBudget(max_items=2048, reserved_items=64)
    budget.acquire(1024)
    budget.acquire(960)  # 1984: all a large call may use
    with pytest.raises(RefusedError) as refused:
        budget.acquire(65)
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and refused.value.reason == "item_limit"
    for _ in range(64):
        budget.acquire(1)  # the reserve is the small callers'
    with pytest.raises(RefusedError):
        budget.acquire(1)
    budget.release(1024)
    budget.release(960)
    budget.acquire(1024)  # given back, taken again


def test_a_batch_flood_is_shed_while_a_single_item_caller_is_answered(model_dir: Path) -> None:
    with running_server(model_dir, max_in_flight=16, grpc_threads=4) as running:
        big = build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1024))
        small = build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1))
        stop, flood_codes = threading.Event(), []
        lock = threading.Lock()

        def flood() -> None:
            while not stop.is_set():
                try:
                    running.stub.DetectAnomaly(big, timeout=30)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as exc:
                    code = exc.code()
                with lock:
                    flood_codes.append(code)

        clients = [threading.Thread(target=flood) for _ in range(4)]
        for client in clients:
            client.start()
        try:
            victim = [len(running.stub.DetectAnomaly(small, timeout=30).results) for _ in range(100)]
            while grpc.StatusCode.RESOURCE_EXHAUSTED not in flood_codes and len(flood_codes) < 2000:
                running.stub.DetectAnomaly(small, timeout=30)  # keep going until the flood has overlapped
        finally:
            stop.set()
            for client in clients:
                client.join()
        assert victim == [1] * 100  # every single-item call admitted and answered
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in flood_codes and grpc.StatusCode.OK in flood_codes
        assert set(flood_codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        shed = {"method": "DetectAnomaly", "reason": "item_limit"}
        assert running.registry.get_sample_value("dwcp_inference_requests_shed_total", shed) == flood_codes.count(
            grpc.StatusCode.RESOURCE_EXHAUSTED
        )

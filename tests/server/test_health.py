"""The health servicer: Watch streams coming and going while statuses change never deadlock the server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.health import NOT_SERVING, SERVING, HealthServicer

SERVICE = "dwcp.inference.v1.InferenceService/DetectAnomaly"


@pytest.fixture
def served() -> Iterator[tuple[HealthServicer, str]]:
    servicer = HealthServicer()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0).wait()


def test_watchers_leaving_while_statuses_change_do_not_deadlock(served: tuple[HealthServicer, str]) -> None:
    servicer, target = served
    servicer.set(SERVICE, SERVING)
    stop = threading.Event()

    def churn() -> None:  # open a watch, read its first answer, hang up; again and again
        while not stop.is_set():
            with grpc.insecure_channel(target) as channel:
                watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
                next(watch)
                watch.cancel()

    def flip() -> None:
        for i in range(3000):
            servicer.set(SERVICE, SERVING if i % 2 else NOT_SERVING)

    churners = [threading.Thread(target=churn, daemon=True) for _ in range(8)]
    for t in churners:
        t.start()
    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    flipper.join(timeout=30)
    stop.set()
    assert not flipper.is_alive(), "set() is stuck: the health servicer deadlocked with a closing watch"
    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    assert reply.status in (SERVING, NOT_SERVING)


def test_drain_says_not_serving_then_ends_every_watch(served: tuple[HealthServicer, str]) -> None:
    servicer, target = served
    servicer.set(SERVICE, SERVING)
    with grpc.insecure_channel(target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
        assert next(watch).status == SERVING
        servicer.enter_graceful_shutdown()
        servicer.set(SERVICE, SERVING)  # ignored from the drain on
        assert [r.status for r in watch] == [NOT_SERVING]  # then the stream ends with OK
        assert watch.code() == grpc.StatusCode.OK

"""Hostile input through the real server: any field values or bytes get OK or INVALID_ARGUMENT, never INTERNAL."""

from __future__ import annotations

from typing import Any

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwcp.inference.v1 import inference_pb2 as pb
from server.app import SERVICE_NAME
from tests.server.helpers import RunningServer, build_request, call, random_inputs
from tests.server.violations import field_violations

# What a hostile request may get: an answer, a refusal naming the field, or (for size) RESOURCE_EXHAUSTED.
# GetModelInfo answers NOT_FOUND for a model name it does not serve.
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
HOSTILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.0, 1e-45, 1e38, 3.5e38, -1e308, 1e308]),
)
enums = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, 2, 3, 4, 5, -1]))
ids = st.one_of(st.text(max_size=80), st.text(min_size=60, max_size=300), st.just("é" * 129))
# Batch sizes: empty, small, and just over the default limit (items are repeated, so it stays cheap).
batch_sizes = st.sampled_from([0, 1, 2, 3, 7, 1025])


def _sample(values: list[float], link_type: int, tier: int) -> pb.LinkSample:
    return pb.LinkSample(
        rtt_ms=values[0],
        jitter_ms=values[1],
        throughput_mbps=values[2],
        packet_loss_ratio=values[3],
        congestion_window_segments=values[4],
        link_type=link_type,  # type: ignore[arg-type]
        network_tier=tier,  # type: ignore[arg-type]
    )


bandwidth_requests = st.builds(
    lambda windows, count: pb.PredictBandwidthRequest(links=(windows * count)[:count] if windows else []),
    st.lists(
        st.builds(
            lambda link_id, samples: pb.LinkWindow(link_id=link_id, samples=samples),
            ids,
            st.lists(st.builds(_sample, st.lists(numbers, min_size=5, max_size=5), enums, enums), max_size=14),
        ),
        min_size=1,
        max_size=3,
    ),
    batch_sizes,
)
compression_requests = st.builds(
    lambda items, count: pb.SelectCompressionRequest(items=(items * count)[:count]),
    st.lists(
        st.builds(
            lambda link_id, v, link_type: pb.CompressionFeatures(
                link_id=link_id,
                throughput_mbps=v[0],
                rtt_ms=v[1],
                link_type=link_type,
                hde_compression_ratio=v[2],
                hde_delta_hit_ratio=v[3],
                amst_transfer_rate_mbps=v[4],
            ),
            ids,
            st.lists(numbers, min_size=5, max_size=5),
            enums,
        ),
        min_size=1,
        max_size=3,
    ),
    batch_sizes,
)
anomaly_requests = st.builds(
    lambda nodes, count: pb.DetectAnomalyRequest(nodes=(nodes * count)[:count]),
    st.lists(
        st.builds(
            lambda node_id, v: pb.NodeMetrics(
                node_id=node_id,
                uptime_pct=v[0],
                failure_ratio=v[1],
                packet_loss_ratio=v[2],
                retransmits_count=v[3],
                error_budget_burn_rate=v[4],
                rtt_ms=v[5],
            ),
            ids,
            st.lists(numbers, min_size=6, max_size=6),
        ),
        min_size=1,
        max_size=3,
    ),
    batch_sizes,
)
latency_requests = st.builds(
    lambda windows, count: pb.DetectHighLatencyRequest(windows=(windows * count)[:count]),
    st.lists(
        st.builds(
            lambda cluster_id, latencies: pb.LatencyWindow(cluster_id=cluster_id, consensus_latencies_ms=latencies),
            ids,
            st.lists(numbers, max_size=25),
        ),
        min_size=1,
        max_size=3,
    ),
    batch_sizes,
)
model_info_requests = st.builds(lambda name: pb.GetModelInfoRequest(model_name=name), ids)


def _outcome(server: RunningServer, rpc: str, request: Any) -> grpc.StatusCode:
    try:
        call(server.stub, rpc, request)
    except grpc.RpcError as error:
        _assert_refusal_names_a_field(error)
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _assert_refusal_names_a_field(error: grpc.RpcError) -> None:
    """An INVALID_ARGUMENT (or NOT_FOUND) carries exactly one BadRequest violation naming a field path."""
    if error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
        violations = field_violations(error)
        assert len(violations) == 1 and all(violations[0]), f"{error.code().name} {error.details()!r}: {violations}"


def _assert_served_and_alive(server: RunningServer, rpc: str, request: Any) -> None:
    allowed = ALLOWED | ({grpc.StatusCode.NOT_FOUND} if rpc == "GetModelInfo" else set())
    code = _outcome(server, rpc, request)
    assert code in allowed, f"{rpc} answered {code.name} to {str(request)[:500]}"


@HOSTILE
@given(request=bandwidth_requests)
def test_predict_bandwidth_hostile_fields(server: RunningServer, request: pb.PredictBandwidthRequest) -> None:
    _assert_served_and_alive(server, "PredictBandwidth", request)


@HOSTILE
@given(request=compression_requests)
def test_select_compression_hostile_fields(server: RunningServer, request: pb.SelectCompressionRequest) -> None:
    _assert_served_and_alive(server, "SelectCompression", request)


@HOSTILE
@given(request=anomaly_requests)
def test_detect_anomaly_hostile_fields(server: RunningServer, request: pb.DetectAnomalyRequest) -> None:
    _assert_served_and_alive(server, "DetectAnomaly", request)


@HOSTILE
@given(request=latency_requests)
def test_detect_high_latency_hostile_fields(server: RunningServer, request: pb.DetectHighLatencyRequest) -> None:
    _assert_served_and_alive(server, "DetectHighLatency", request)


@HOSTILE
@given(request=model_info_requests)
def test_get_model_info_hostile_fields(server: RunningServer, request: pb.GetModelInfoRequest) -> None:
    _assert_served_and_alive(server, "GetModelInfo", request)


RPCS = ("PredictBandwidth", "SelectCompression", "DetectAnomaly", "DetectHighLatency", "GetModelInfo")
# A length-delimited field 1 (the batch / model_name) whose bytes are not UTF-8, and truncated messages.
INVALID_UTF8 = [b"\x0a\x03\xff\xfe\xfd", b"\x0a\x05\x0a\x03\xc3\x28\x41", b"\x0a\x10\x0a", b"\x0a"]


@HOSTILE
@given(rpc=st.sampled_from(RPCS), data=st.one_of(st.binary(max_size=300), st.sampled_from(INVALID_UTF8)))
def test_raw_bytes_of_any_kind_are_refused_cleanly(server: RunningServer, rpc: str, data: bytes) -> None:
    raw = server.channel.unary_unary(f"/{SERVICE_NAME}/{rpc}")  # bytes in, bytes out: no client-side parsing
    try:
        raw(data, timeout=10)
        code = grpc.StatusCode.OK
    except grpc.RpcError as error:
        _assert_refusal_names_a_field(error)
        code = error.code()
    allowed = ALLOWED | ({grpc.StatusCode.NOT_FOUND} if rpc == "GetModelInfo" else set())
    assert code in allowed, f"{rpc} answered {code.name} to raw bytes {data[:80]!r}"


def test_invalid_utf8_is_invalid_argument_naming_the_request_type(server: RunningServer) -> None:
    raw = server.channel.unary_unary(f"/{SERVICE_NAME}/DetectAnomaly")
    try:
        raw(b"\x0a\x05\x0a\x03\xc3\x28\x41", timeout=10)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        [(field, reason)] = field_violations(error)
        assert field == "request" and reason.startswith("not a valid DetectAnomalyRequest message")
    else:
        raise AssertionError("invalid UTF-8 in node_id was answered")
    # and the server still answers a good request
    answer = call(server.stub, "DetectAnomaly", build_request("DetectAnomaly", random_inputs("DetectAnomaly", 1)))
    assert len(answer.results) == 1 and answer.model.version  # a message is always truthy; its contents are not

"""Every bad request is refused with INVALID_ARGUMENT whose BadRequest detail names the field path and reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwcp.inference.v1 import inference_pb2 as pb
from server.servicer import RpcError
from tests.server.helpers import RunningServer, build_request, call, random_inputs
from tests.server.violations import field_violations

Mutation = Callable[[Any], None]
LINK_TYPES = "(expected one of dc=1, metro=2, wan=3, edge=4)"


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting `links.3.samples.9.rtt_ms`-style paths (digits index repeated fields)."""

    def mutate(message: Any) -> None:
        *parents, last = path.split(".")
        for part in parents:
            message = message[int(part)] if part.isdigit() else getattr(message, part)
        if last.isdigit():
            message[int(last)] = value
        else:
            setattr(message, last, value)

    return mutate


def _drop_sample(index: int) -> Mutation:
    return lambda request: request.links[index].samples.pop()


CASES: list[tuple[str, int, Mutation, str, str]] = [
    ("PredictBandwidth", 0, lambda r: None, "links", "the batch is empty; send at least 1 item"),
    ("DetectAnomaly", 1025, lambda r: None, "nodes", "1025 items exceed the batch limit of 1024"),
    ("PredictBandwidth", 3, _drop_sample(2), "links[2].samples", "has 9 entries, expected exactly 10"),
    (
        "PredictBandwidth",
        2,
        lambda r: r.links[1].samples.append(r.links[1].samples[0]),
        "links[1].samples",
        "has 11 entries, expected exactly 10",
    ),
    (
        "PredictBandwidth",
        4,
        _set("links.3.samples.9.rtt_ms", 12000.0),
        "links[3].samples[9].rtt_ms",
        "12000 is above the maximum 10000 ms",
    ),
    (
        "PredictBandwidth",
        1,
        _set("links.0.samples.4.jitter_ms", -0.5),
        "links[0].samples[4].jitter_ms",
        "-0.5 is below the minimum 0 ms",
    ),
    (
        "PredictBandwidth",
        1,
        _set("links.0.samples.0.throughput_mbps", float("nan")),
        "links[0].samples[0].throughput_mbps",
        "nan is not a finite number",
    ),
    (
        "PredictBandwidth",
        1,
        _set("links.0.samples.1.throughput_mbps", float("inf")),
        "links[0].samples[1].throughput_mbps",
        "inf is not a finite number",
    ),
    (
        "PredictBandwidth",
        1,
        _set("links.0.samples.2.packet_loss_ratio", 1.5),
        "links[0].samples[2].packet_loss_ratio",
        "1.5 is above the maximum 1 (ratio 0-1)",
    ),
    (
        "PredictBandwidth",
        2,
        _set("links.1.samples.0.link_type", 0),
        "links[1].samples[0].link_type",
        f"0 is not a known link_type value {LINK_TYPES}",
    ),
    (
        "PredictBandwidth",
        1,
        _set("links.0.samples.0.link_type", 7),
        "links[0].samples[0].link_type",
        f"7 is not a known link_type value {LINK_TYPES}",
    ),
    (
        "PredictBandwidth",
        1,
        _set("links.0.samples.3.network_tier", 0),
        "links[0].samples[3].network_tier",
        "0 is not a known network_tier value (expected one of tier1=1, tier2=2, tier3=3)",
    ),
    (
        "PredictBandwidth",
        1,
        _set("links.0.samples.3.congestion_window_segments", 0.0),
        "links[0].samples[3].congestion_window_segments",
        "0 is below the minimum 1 segments",
    ),
    (
        "PredictBandwidth",
        2,
        _set("links.1.link_id", "x" * 257),
        "links[1].link_id",
        "257 bytes is longer than the limit of 256",
    ),
    (
        "PredictBandwidth",
        1,
        _set("links.0.link_id", "é" * 129),
        "links[0].link_id",
        "258 bytes is longer than the limit of 256",
    ),
    (
        "SelectCompression",
        5,
        _set("items.4.link_type", 0),
        "items[4].link_type",
        f"0 is not a known link_type value {LINK_TYPES}",
    ),
    (
        "SelectCompression",
        1,
        _set("items.0.hde_compression_ratio", 0.5),
        "items[0].hde_compression_ratio",
        "0.5 is below the minimum 1 ratio",
    ),
    (
        "SelectCompression",
        1,
        _set("items.0.hde_delta_hit_ratio", -1e-9),
        "items[0].hde_delta_hit_ratio",
        "-1e-09 is below the minimum 0 (ratio 0-1)",
    ),
    (
        "DetectAnomaly",
        1,
        _set("nodes.0.uptime_pct", 101.0),
        "nodes[0].uptime_pct",
        "101 is above the maximum 100 (pct 0-100)",
    ),
    (
        "DetectAnomaly",
        3,
        _set("nodes.2.failure_ratio", float("-inf")),
        "nodes[2].failure_ratio",
        "-inf is not a finite number",
    ),
    (
        "DetectAnomaly",
        1,
        _set("nodes.0.node_id", "n" * 300),
        "nodes[0].node_id",
        "300 bytes is longer than the limit of 256",
    ),
    (
        "DetectHighLatency",
        1,
        lambda r: r.windows[0].consensus_latencies_ms.pop(),
        "windows[0].consensus_latencies_ms",
        "has 19 entries, expected exactly 20",
    ),
    (
        "DetectHighLatency",
        2,
        _set("windows.1.consensus_latencies_ms.5", -1.0),
        "windows[1].consensus_latencies_ms[5]",
        "-1 is below the minimum 0 ms",
    ),
    (
        "DetectHighLatency",
        1,
        _set("windows.0.consensus_latencies_ms.19", 1e300),
        "windows[0].consensus_latencies_ms[19]",
        "1e+300 is above the maximum 600000 ms",
    ),
    (
        "DetectHighLatency",
        1,
        _set("windows.0.cluster_id", "c" * 257),
        "windows[0].cluster_id",
        "257 bytes is longer than the limit of 256",
    ),
]


@pytest.mark.parametrize(("rpc", "items", "mutate", "field", "reason"), CASES, ids=[c[3] for c in CASES])
def test_bad_request_is_refused_naming_the_field(
    server: RunningServer, rpc: str, items: int, mutate: Mutation, field: str, reason: str
) -> None:
    request = build_request(rpc, random_inputs(rpc, items))
    mutate(request)
    with pytest.raises(grpc.RpcError) as error:
        call(server.stub, rpc, request)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error.value) == [(field, reason)]


def test_the_message_names_the_field_for_humans(server: RunningServer) -> None:
    request = build_request("PredictBandwidth", random_inputs("PredictBandwidth", 4))
    request.links[3].samples[9].rtt_ms = 12000
    with pytest.raises(grpc.RpcError) as error:
        call(server.stub, "PredictBandwidth", request)
    # grpcurl and logs show the message: it says what the detail says.
    assert error.value.details() == "links[3].samples[9].rtt_ms: 12000 is above the maximum 10000 ms"


def test_the_first_bad_item_is_named(server: RunningServer) -> None:
    request = build_request("DetectAnomaly", random_inputs("DetectAnomaly", 10))
    request.nodes[7].rtt_ms = -1
    request.nodes[3].uptime_pct = 200
    with pytest.raises(grpc.RpcError) as error:
        call(server.stub, "DetectAnomaly", request)
    assert [field for field, _ in field_violations(error.value)] == ["nodes[3].uptime_pct"]


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(finite_or_not, min_size=6, max_size=6), node_id=st.text(max_size=300))
def test_no_input_gives_anything_but_ok_or_invalid_argument(
    server: RunningServer, values: list[float], node_id: str
) -> None:
    names = [
        "uptime_pct",
        "failure_ratio",
        "packet_loss_ratio",
        "retransmits_count",
        "error_budget_burn_rate",
        "rtt_ms",
    ]
    request = pb.DetectAnomalyRequest(nodes=[pb.NodeMetrics(node_id=node_id, **dict(zip(names, values, strict=True)))])
    try:
        response = server.app.handler.handle("DetectAnomaly", request)
    except RpcError as error:
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field.startswith("nodes[0].") for v in error.violations] == [True]
    else:
        assert len(response.results) == 1  # type: ignore[attr-defined]

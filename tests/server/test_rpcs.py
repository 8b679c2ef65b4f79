"""Every RPC of the proto is wired: inference RPCs by one spec each, GetModelInfo by its own handler."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from dwcp.inference.v1 import inference_pb2 as pb
from server import responses
from server.metrics import Metrics
from server.rpc_spec import FLAT, SCALAR_SEQUENCE, RpcSpec
from server.rpcs import SPECS
from server.servicer import InferenceHandler, thread_behaviour
from server.store import ModelStore

SERVICE = pb.DESCRIPTOR.services_by_name["InferenceService"]


def _handler() -> InferenceHandler:
    metrics = Metrics(CollectorRegistry(), 0.01)
    return InferenceHandler(ModelStore(Path("/nonexistent"), metrics), metrics, max_batch_items=8)


def test_every_proto_method_has_exactly_one_answer() -> None:
    assert set(_handler().answers) == {m.name for m in SERVICE.methods}
    assert "GetModelInfo" not in SPECS  # not an inference RPC: its own handler


@pytest.mark.parametrize("spec", SPECS.values(), ids=lambda s: s.rpc)
def test_a_spec_names_fields_its_messages_have(spec: RpcSpec) -> None:
    request = SERVICE.methods_by_name[spec.rpc].input_type
    batch = request.fields_by_name[spec.batch_field]
    assert batch.is_repeated and batch.message_type is not None
    assert spec.id_field in batch.message_type.fields_by_name
    if spec.sequence_field is not None:
        assert spec.sequence_field in batch.message_type.fields_by_name
    results = [f for f in SERVICE.methods_by_name[spec.rpc].output_type.fields if f.is_repeated]
    assert len(results) == 1 and spec.id_field in results[0].message_type.fields_by_name


def test_a_proto_method_without_an_answer_fails_at_start_up_not_at_its_first_call() -> None:
    handler = _handler()
    del handler.answers["DetectAnomaly"]
    with pytest.raises(LookupError, match="DetectAnomaly"):
        thread_behaviour(handler, "DetectAnomaly")


def test_a_spec_refuses_a_sequence_field_that_does_not_fit_its_layout() -> None:
    flat = SPECS["DetectAnomaly"]
    assert flat.layout == FLAT
    with pytest.raises(ValueError, match="sequence_field"):
        replace(flat, sequence_field="samples")
    with pytest.raises(ValueError, match="sequence_field"):
        replace(SPECS["DetectHighLatency"], layout=SCALAR_SEQUENCE, sequence_field=None)
    with pytest.raises(ValueError, match="layout"):
        RpcSpec(
            rpc="X",
            layout="ragged",
            batch_field="nodes",
            id_field="node_id",
            feature_type=pb.NodeMetrics,
            required_outputs=(),
            build_response=responses.anomaly,
        )

"""The two ways a request is checked (Python comparisons for small requests, numpy for large) agree exactly.

Small requests are decided "all valid" with Python's comparisons; any refusal and every large request go
through validation.RangeCheck. For the same request, both must give the same tensor or the same refusal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.tiny_models import write_model_set
from bench.tiny_requests import build_request, random_inputs
from server import codec
from server.rpcs import SPECS
from server.runtime import LoadedModel, load_version
from server.validation import ValidationError

SPECIAL = [float("nan"), float("inf"), float("-inf"), -1.0, -1e-9, 0.0, 1.0, 7.0, 100.0, 1e300]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadedModel]:
    versions = write_model_set(tmp_path_factory.mktemp("models"))
    loaded = [load_version(version, 1, 1024) for version in versions.values()]
    return {model.manifest.rpc: model for model in loaded}


def _outcome(model: LoadedModel, request: Any) -> tuple[str, Any]:
    try:
        ids, inputs = codec.encode_request(model.spec, request, model.manifest, model.range_check, 1024, model.layout)
    except ValidationError as refused:
        return "refused", (refused.field, refused.reason)
    return "ok", (ids, inputs.dtype, inputs.shape, inputs.tobytes())


def _poison(inputs: np.ndarray, spots: list[tuple[float, float]]) -> np.ndarray:
    """`inputs` with values replaced at (share of the way through the flat array, value) spots."""
    flat = inputs.reshape(-1).copy()
    for share, value in spots:
        flat[min(int(share * flat.size), flat.size - 1)] = value
    return flat.reshape(inputs.shape)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rpc=st.sampled_from(sorted(SPECS)),
    items=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    spots=st.lists(st.tuples(st.floats(0.0, 1.0), st.sampled_from(SPECIAL)), max_size=3),
)
def test_small_and_numpy_checks_give_the_same_tensor_or_the_same_refusal(
    models: dict[str, LoadedModel],
    monkeypatch: pytest.MonkeyPatch,
    rpc: str,
    items: int,
    seed: int,
    spots: list[tuple[float, float]],
) -> None:
    model = models[rpc]
    items = min(items, codec.SMALL_REQUEST_VALUES // model.layout.item_size)  # small enough for the Python path
    inputs = _poison(random_inputs(rpc, items, seed), spots)
    try:
        request = build_request(rpc, inputs)
    except (TypeError, ValueError, OverflowError):  # e.g. NaN in an enum field cannot be put in a message
        return
    assert model.layout.item_size * items <= codec.SMALL_REQUEST_VALUES  # the small path is the one taken
    small = _outcome(model, request)
    monkeypatch.setattr(codec, "SMALL_REQUEST_VALUES", 0)  # every request through numpy
    assert _outcome(model, request) == small
    monkeypatch.undo()


def test_a_valid_small_request_is_the_float32_of_its_values(models: dict[str, LoadedModel]) -> None:
    model = models["DetectAnomaly"]
    inputs = random_inputs("DetectAnomaly", 2, 3)
    kind, (ids, dtype, shape, data) = _outcome(model, build_request("DetectAnomaly", inputs))
    assert (kind, ids, dtype, shape) == ("ok", ["id-0", "id-1"], np.float32, inputs.shape)
    assert data == inputs.astype(np.float32).tobytes()


def test_a_large_request_is_refused_by_its_first_bad_value_like_a_small_one(models: dict[str, LoadedModel]) -> None:
    model = models["DetectHighLatency"]
    inputs = random_inputs("DetectHighLatency", 40, 1)  # 800 values: the numpy path
    inputs[31, 7] = -1.0
    inputs[35, 0] = float("nan")
    kind, (field, reason) = _outcome(model, build_request("DetectHighLatency", inputs))
    assert (kind, field, reason) == ("refused", "windows[31].consensus_latencies_ms[7]", "-1 is below the minimum 0 ms")


def test_an_enum_code_inside_the_range_but_not_a_category_is_not_valid() -> None:
    # Categories {1, 3} inside [0, 10]: the range alone would let 2 through.
    layout = codec.InputLayout((2,), 2, iter, [0.0, 0.0], [10.0, 10.0], ((1, frozenset({1.0, 3.0})),))
    assert codec._all_valid([5.0, 3.0, 9.0, 1.0], layout, 2)
    assert not codec._all_valid([5.0, 3.0, 9.0, 2.0], layout, 2)
    assert not codec._all_valid([5.0, float("nan")], layout, 1)

"""Turn a request into its ids and one float32 batch tensor, as the RPC's spec and the model's manifest say."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
from google.protobuf.message import Message

from artifacts.schema import Manifest
from server import validation
from server.rpc_spec import MESSAGE_SEQUENCE, SCALAR_SEQUENCE, RpcSpec

# Requests of at most this many values are checked with Python's comparisons, above it with numpy's: a
# numpy call costs more than the work on a few values, and the server mostly sees single items
# (docs/performance.md, "Per-request work"). Both only decide "all valid"; any refusal, whatever the size,
# is explained by validation.RangeCheck, so the messages have one source.
SMALL_REQUEST_VALUES = 128


@dataclass(frozen=True)
class InputLayout:
    """What decoding a request of one model version needs from its manifest, computed once at load."""

    inner: tuple[int, ...]  # the input's fixed axes after the batch axis
    item_size: int  # values per item: the product of `inner`
    values_of: Callable[[Any], Iterable[float]]  # a batch's rows -> its values in input order, unchecked
    low: list[float]  # per value of one item, in input order: the lowest allowed value
    high: list[float]  # ... the highest
    enums: tuple[tuple[int, frozenset[float]], ...]  # (position in an item, the known codes) of enum features


def _values_of(spec: RpcSpec, names: list[str]) -> Callable[[Any], Iterable[float]]:
    """The batch's rows (items, or for sequence layouts their sequences) -> its values flattened in input order;
    attrgetter keeps the per-item work in C."""
    if spec.layout == SCALAR_SEQUENCE:
        return chain.from_iterable
    row: Callable[[Any], Any] = attrgetter(*names)  # a value, or a tuple of them for several names
    if spec.layout == MESSAGE_SEQUENCE:
        if len(names) == 1:
            return lambda sequences: map(row, chain.from_iterable(sequences))
        return lambda sequences: chain.from_iterable(map(row, chain.from_iterable(sequences)))
    if len(names) == 1:
        return lambda items: map(row, items)
    return lambda items: chain.from_iterable(map(row, items))


def input_layout(spec: RpcSpec, manifest: Manifest) -> InputLayout:
    """The layout of `manifest`'s input (check_manifest has made sure its inner axes are fixed)."""
    inner = tuple(int(d or 0) for d in manifest.input.shape[1:])
    item_size = math.prod(inner)
    features = manifest.input.features
    names = [f.name for f in features]
    # The feature of each value of one item: the last axis holds the features, or one feature repeats.
    columns = list(features) if len(features) == inner[-1] else list(features) * inner[-1]
    per_value = [columns[k % inner[-1]] for k in range(item_size)]
    enums = tuple(
        (k, frozenset(float(v) for v in f.categories.values())) for k, f in enumerate(per_value) if f.categories
    )
    return InputLayout(
        inner,
        item_size,
        _values_of(spec, names),
        [f.min_value for f in per_value],
        [f.max_value for f in per_value],
        enums,
    )


def _all_valid(values: list[float], layout: InputLayout, count: int) -> bool:
    """True when every value is inside its feature's range and every enum is a known code (NaN never is)."""
    low, high = layout.low * count, layout.high * count
    if not (all(map(operator.le, low, values)) and all(map(operator.le, values, high))):
        return False
    if not layout.enums:
        return True
    size = layout.item_size
    return all(values[i * size + k] in known for k, known in layout.enums for i in range(count))


def encode_request(
    spec: RpcSpec,
    request: Message,
    manifest: Manifest,
    check: validation.RangeCheck,
    max_items: int,
    layout: InputLayout,
) -> tuple[list[str], np.ndarray]:
    """Validate a request and return its ids and its float32 input tensor (raises ValidationError)."""
    items = getattr(request, spec.batch_field)
    count = len(items)
    validation.check_batch_size(spec.batch_field, count, max_items)
    ids = list(map(attrgetter(spec.id_field), items))
    validation.check_ids(spec.batch_field, spec.id_field, ids)
    rows = items
    if spec.sequence_field is not None:
        rows = list(map(attrgetter(spec.sequence_field), items))  # each container once: upb builds it per access
        expected = layout.inner[0]
        if any(map(expected.__ne__, map(len, rows))):
            lengths = np.fromiter(map(len, rows), dtype=np.int64, count=count)
            validation.check_lengths(spec.batch_field, spec.sequence_field, lengths, expected)
    size = count * layout.item_size
    shape = (count, *layout.inner)
    if size <= SMALL_REQUEST_VALUES:
        values = list(layout.values_of(rows))
        if _all_valid(values, layout, count):
            return ids, np.array(values, dtype=np.float32).reshape(shape)
        checked = np.array(values, dtype=np.float64).reshape(shape)
    else:
        checked = np.fromiter(layout.values_of(rows), dtype=np.float64, count=size).reshape(shape)
    check.check(checked, lambda i, t, j: spec.path_of(i, t, j, manifest))
    return ids, checked.astype(np.float32)

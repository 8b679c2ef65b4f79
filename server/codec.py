"""Turn a request into its ids and one float32 batch tensor, as the RPC's spec and the model's manifest say."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
from google.protobuf.message import Message

from artifacts.schema import Manifest
from server import validation
from server.rpc_spec import SCALAR_SEQUENCE, RpcSpec


@dataclass(frozen=True)
class InputLayout:
    """What decoding a request of one model version needs from its manifest, computed once at load."""

    inner: tuple[int, ...]  # the input's fixed axes after the batch axis
    item_size: int  # values per item: the product of `inner`
    row_values: Callable[[Any], tuple[Any, ...]] | None  # a message's features in input order (None: scalars)


def input_layout(spec: RpcSpec, manifest: Manifest) -> InputLayout:
    """The layout of `manifest`'s input (check_manifest has made sure its inner axes are fixed)."""
    inner = tuple(int(d or 0) for d in manifest.input.shape[1:])
    row_values = None
    if spec.layout != SCALAR_SEQUENCE:
        # attrgetter of several names returns a tuple per row: the per-item work stays in C.
        names = [f.name for f in manifest.input.features]
        row_values = attrgetter(*names) if len(names) > 1 else (lambda row: (getattr(row, names[0]),))
    return InputLayout(inner, math.prod(inner), row_values)


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
    if spec.sequence_field is not None:
        sequences = list(map(attrgetter(spec.sequence_field), items))
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=count)
        validation.check_lengths(spec.batch_field, spec.sequence_field, lengths, layout.inner[0])
        rows = chain.from_iterable(sequences)
    else:
        rows = iter(items)
    size = count * layout.item_size
    if layout.row_values is None:
        values = np.fromiter(rows, dtype=np.float64, count=size)
    else:
        values = np.fromiter(chain.from_iterable(map(layout.row_values, rows)), dtype=np.float64, count=size)
    values = values.reshape((count, *layout.inner))
    check.check(values, lambda i, t, j: spec.path_of(i, t, j, manifest))
    return ids, values.astype(np.float32)

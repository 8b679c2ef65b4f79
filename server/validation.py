"""Request checks before any model runs: batch size, sequence lengths, id lengths and value ranges."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from artifacts.schema import Feature

MAX_ID_BYTES = 256

# path_of(item_index, position_or_None, feature_index) -> "links[3].samples[9].rtt_ms"
PathOf = Callable[[int, int | None, int], str]


class ValidationError(ValueError):
    """A request the server refuses: the field path and the reason, as data; str() is "path: reason"."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field  # e.g. "links[3].samples[9].rtt_ms"
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def _number(value: float) -> str:
    return f"{value:.10g}"


def _with_unit(value: float, unit: str) -> str:
    if unit in ("", "enum"):
        return _number(value)
    return f"{_number(value)} {unit}" if " " not in unit else f"{_number(value)} ({unit})"


def check_batch_size(field: str, count: int, max_items: int) -> None:
    """Refuse an empty batch or one larger than `max_items`."""
    if count == 0:
        raise ValidationError(field, "the batch is empty; send at least 1 item")
    if count > max_items:
        raise ValidationError(field, f"{count} items exceed the batch limit of {max_items}")


def check_lengths(field: str, sequence: str, lengths: np.ndarray, expected: int) -> None:
    """Refuse any item whose sequence does not have exactly `expected` entries, naming the first one."""
    wrong = np.flatnonzero(lengths != expected)
    if wrong.size:
        i = int(wrong[0])
        raise ValidationError(f"{field}[{i}].{sequence}", f"has {int(lengths[i])} entries, expected exactly {expected}")


def check_ids(field: str, id_field: str, ids: Sequence[str]) -> None:
    """Refuse ids longer than MAX_ID_BYTES of UTF-8."""
    # A str of at most MAX_ID_BYTES // 4 characters cannot exceed the limit; only longer ones are encoded.
    if not ids or max(map(len, ids)) <= MAX_ID_BYTES // 4:
        return
    for i, item_id in enumerate(ids):
        if len(item_id) > MAX_ID_BYTES // 4 and len(item_id.encode("utf-8")) > MAX_ID_BYTES:
            size = len(item_id.encode("utf-8"))
            raise ValidationError(
                f"{field}[{i}].{id_field}", f"{size} bytes is longer than the limit of {MAX_ID_BYTES}"
            )


class RangeCheck:
    """Vectorised range, finiteness and enum checks for one input, built once per model version."""

    def __init__(self, features: Sequence[Feature], last_axis: int) -> None:
        self.features = tuple(features) if len(features) == last_axis else tuple(features) * last_axis
        self.min_values = np.array([f.min_value for f in self.features], dtype=np.float64)
        self.max_values = np.array([f.max_value for f in self.features], dtype=np.float64)
        self.enum_columns = [
            (j, np.array(sorted(f.categories.values()), dtype=np.float64))
            for j, f in enumerate(self.features)
            if f.categories
        ]

    def check(self, values: np.ndarray, path_of: PathOf) -> None:
        """Refuse the first value (in item order) that is non-finite, out of range or an unknown enum."""
        # Written as "not inside" so that NaN, which fails every comparison, is caught too.
        bad = ~((values >= self.min_values) & (values <= self.max_values))
        for j, known in self.enum_columns:
            # Broadcast equality against the few known codes: cheaper than np.isin on small batches.
            bad[..., j] |= ~(values[..., j, None] == known).any(axis=-1)
        if not bad.any():
            return
        index = tuple(int(k) for k in np.argwhere(bad)[0])
        item, column = index[0], index[-1]
        position = index[1] if len(index) == 3 else None
        raise ValidationError(path_of(item, position, column), self._reason(float(values[index]), column))

    def _reason(self, value: float, column: int) -> str:
        feature = self.features[column]
        if not np.isfinite(value):
            return f"{_number(value)} is not a finite number"
        if feature.categories:
            known = ", ".join(f"{name}={number}" for name, number in feature.categories.items())
            if value not in feature.categories.values():
                return f"{_number(value)} is not a known {feature.name} value (expected one of {known})"
        if value < feature.min_value:
            return f"{_number(value)} is below the minimum {_with_unit(feature.min_value, feature.unit)}"
        return f"{_number(value)} is above the maximum {_with_unit(feature.max_value, feature.unit)}"

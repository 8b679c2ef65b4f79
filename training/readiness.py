"""What a metrics file allows: the sample grid its series sit on, and which models it can train on which features."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from training.checks import series_codes, time_seconds
from training.features import MODEL_DATA, FeatureSelectionError, select_features
from training.problems import ModelStatus, ValidationReport
from training.sampling import DEFAULT_SNAP_TOLERANCE, MAX_OFF_GRID_SHARE, segment_counts, snap_to_grid
from training.schema import COLUMNS_BY_NAME

MODEL_NAMES: tuple[str, ...] = tuple(MODEL_DATA)
TIME_COLUMNS = ("epoch_time", "timestamp")
# Series columns validation keeps after checking them: time order, the sample grid and window counts use them.
SERIES_COLUMNS = (*TIME_COLUMNS, "node_id", "peer_id")
# Columns a task reads besides its features and series keys: the bandwidth report gives interval coverage
# per link type (even when link_type is not a feature).
TASK_COLUMNS: dict[str, tuple[str, ...]] = {"bandwidth_predictor": ("link_type",)}


@dataclass(frozen=True)
class DataRequest:
    """What the data is validated and loaded for (the `--models`, `--features` and `--snap-tolerance` flags)."""

    # None: all four, reporting which the file can train; a tuple: each of these must be trainable.
    models: tuple[str, ...] | None = None
    # model -> feature names chosen explicitly; a model not in it uses every feature whose column is present.
    features: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # share of the interval a stamp may be off its grid slot and still be snapped to it.
    snap_tolerance: float = DEFAULT_SNAP_TOLERANCE


def needed_columns(request: DataRequest) -> set[str] | None:
    """The canonical columns training `request.models` reads (present or not); None when every model may train.

    Time and series columns, each model's series keys, its chosen features (or all of its features when
    none are chosen) and what its task reads besides (TASK_COLUMNS). Other columns are not read at all.
    """
    if request.models is None:
        return None
    needed = set(SERIES_COLUMNS)
    for name in request.models:
        spec, chosen = MODEL_DATA[name], request.features.get(name)
        needed.update(spec.identity, spec.window_group, TASK_COLUMNS.get(name, ()))
        needed.update(f.column for f in spec.features if chosen is None or f.name in chosen or f.column in chosen)
    return needed


def check_sampling(arrays: dict[str, pa.Array], file: str, report: ValidationReport, tolerance: float) -> None:
    """Infer the interval and snap every series to its grid; too many rows off the grid is a problem."""
    seconds = time_seconds(arrays)
    if seconds is None:
        return
    sampling = snap_to_grid(seconds, series_codes(arrays), tolerance)
    report.sampling, report.sampling_file = sampling, file
    if sampling.interval_s <= 0:
        report.notice(file, None, "no series has two distinct stamps: the sample interval cannot be inferred")
        return
    off = sampling.off_grid_dropped
    if not off:
        return
    share = off / max(len(seconds), 1)
    message = (
        f"{off} row(s) ({share:.1%}) lie more than {tolerance:.0%} of the {sampling.interval_s:g} s interval "
        "off the sample grid"
    )
    if share > MAX_OFF_GRID_SHARE:
        report.problem(
            file,
            "epoch_time" if "epoch_time" in arrays else "timestamp",
            f"sampling is not regular: {message}",
            f"stamps within {tolerance:.0%} of a fixed interval (raise --snap-tolerance, or resample the data)",
            mask=sampling.off_grid,
        )
    else:
        assert sampling.off_grid is not None
        rows = ", ".join(str(int(i) + 1) for i in np.flatnonzero(sampling.off_grid)[:5])
        report.notice(file, None, f"{message} (rows {rows}...); dropped")


def _windows(name: str, arrays: dict[str, pa.Array], report: ValidationReport) -> dict[str, int]:
    spec, sampling = MODEL_DATA[name], report.sampling
    if not spec.window_span or sampling is None or sampling.interval_s <= 0:
        return {}
    return segment_counts(series_codes(arrays, spec.window_group), sampling.slots, spec.window_span)


def check_models(
    arrays: dict[str, pa.Array],
    file: str,
    report: ValidationReport,
    request: DataRequest,
    incidents: bool,
    present: set[str] | None = None,
) -> None:
    """Which models the file can train; with explicit models, any that cannot is a problem naming the column.

    `present` names the canonical columns of the file (default: those of `arrays`, which must hold the
    series columns).
    """
    present = set(arrays) if present is None else present
    explicit = request.models is not None
    for name in request.models or MODEL_NAMES:
        spec = MODEL_DATA[name]
        status = ModelStatus(name, (), (), window_span=spec.window_span)
        missing = [c for c in spec.identity if c not in present]
        missing += [f.column for f in spec.features if f.name in spec.core and f.column not in present]
        chosen = request.features.get(name)
        if chosen is not None:
            missing += [f.column for f in spec.features if f.name in chosen and f.column not in present]
        for column in dict.fromkeys(missing):
            status.reasons.append(f"column {column} missing")
            if explicit:
                report.problem(file, column, f"column needed by {name} is missing", COLUMNS_BY_NAME[column].expected())
        if spec.incidents == "required" and not incidents:
            status.reasons.append("needs incidents (labels) to choose its threshold")
            if explicit:
                report.problem(
                    file,
                    None,
                    f"{name} needs incidents (labels) to choose its threshold",
                    "an incidents JSON file (validate --incidents, train --incidents-path)",
                )
        if not missing:
            try:
                features = select_features(name, present, chosen)
            except FeatureSelectionError as exc:
                status.reasons.append(str(exc))
                if explicit:
                    report.problem(file, None, str(exc), "the columns of its features (docs/telemetry-schema.md)")
            else:
                status.features = tuple(f.name for f in features)
                status.absent = tuple(f.name for f in spec.features if f not in features)
                status.windows = _windows(name, arrays, report)
        report.models.append(status)
    if not explicit and not any(m.can_train for m in report.models):
        report.problem(file, None, "no model can train on this file", "the columns of at least one model (see MODEL)")

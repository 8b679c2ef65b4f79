"""Both detectors' evaluations call a flag that catches nothing, or flags everything, a failure."""

from __future__ import annotations

import numpy as np

from training.tasks import consensus, reliability


def _labels() -> np.ndarray:
    labels = np.zeros(200, bool)
    labels[20:30] = True
    return labels


def test_consensus_flag_that_catches_no_incident_window_fails() -> None:
    """Judged on the primary labelling: windows whose newest point is in an incident."""
    labels = _labels()
    newest = np.zeros(200, bool)
    newest[25:30] = True
    score = np.random.default_rng(0).random(200)
    out = {"reconstruction_error": score, "is_high_latency": np.zeros(200, bool), "level_ms": np.full(200, 50.0)}
    thresholds = {"reconstruction_error": 2.0, "level_ms": 500.0}
    evaluation = consensus._evaluate(labels, newest, out, thresholds, {}, 0.98)
    assert evaluation.failures == [
        "the flag catches none of the 5 positive test windows (newest-point labels) (0 true positives; 0 flagged): "
        "the threshold chosen on validation catches nothing"
    ]
    assert not evaluation.passed
    out["is_high_latency"] = labels & ~newest  # catches windows only under the any-point labelling
    assert consensus._evaluate(labels, newest, out, thresholds, {}, 0.98).failures != []
    out["is_high_latency"] = newest.copy()
    assert consensus._evaluate(labels, newest, out, thresholds, {}, 0.98).failures == []


def test_reliability_flag_that_flags_every_row_fails() -> None:
    labels = _labels()
    score = np.random.default_rng(1).random(200)
    evaluation = reliability._evaluate(labels, score, np.ones(200, bool), {}, 0.98)
    assert len(evaluation.failures) == 1 and "flags (nearly) everything" in evaluation.failures[0]
    assert reliability._evaluate(labels, score, labels, {}, 0.98).failures == []

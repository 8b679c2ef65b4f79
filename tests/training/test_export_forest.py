"""Tests for the compact IsolationForest ONNX export: scores, leaf decisions, thresholds, latency."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from artifacts.session import ort_session
from training.export_forest import (
    FLAG_NAME,
    INPUT_NAME,
    SCORE_NAME,
    ForestPreprocessing,
    check_forest_parity,
    forest_latency_us,
    forest_leaf_ids_onnx,
    forest_to_onnx,
    native_anomaly_score,
    raw_thresholds_f32,
)
from training.parity import ParityError

N_FEATURES = 6
HEAVY_TAILED = ForestPreprocessing(log1p_features=(2, 3, 5))


def _node_metrics(rows: int, seed: int) -> np.ndarray:
    """Heavy-tailed positive rows, a few of them extreme."""
    rng = np.random.default_rng(seed)
    x = rng.lognormal(mean=1.0, sigma=1.0, size=(rows, N_FEATURES))
    x[: rows // 50] *= 30.0
    return x.astype(np.float32)


def _fit(preprocessing: ForestPreprocessing, **kwargs: object) -> IsolationForest:
    forest = IsolationForest(n_estimators=30, random_state=42, **kwargs)  # type: ignore[arg-type]
    return forest.fit(preprocessing.transform(_node_metrics(600, seed=0)))


def _rows_at_thresholds(forest: IsolationForest, pre: ForestPreprocessing) -> np.ndarray:
    """Rows with one feature exactly at a split's raw float32 threshold or one ulp either side."""
    rng = np.random.default_rng(7)
    rows = []
    for tree, features in zip(forest.estimators_, forest.estimators_features_, strict=True):
        inner = tree.tree_.children_left >= 0
        for f_local, t in zip(tree.tree_.feature[inner], tree.tree_.threshold[inner], strict=True):
            f = int(features[f_local]) if forest._max_features != N_FEATURES else int(f_local)
            edge = raw_thresholds_f32(np.array([t]), f, pre)[0]
            for value in (edge, np.nextafter(edge, np.float32(np.inf))):
                row = _node_metrics(1, seed=int(rng.integers(1 << 30)))[0]
                row[f] = value
                rows.append(row)
    return np.array(rows, dtype=np.float32)


@pytest.mark.parametrize("pre", [ForestPreprocessing(), HEAVY_TAILED], ids=["raw", "log1p"])
@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_scores_match_sklearn(pre: ForestPreprocessing, max_features: float) -> None:
    forest = _fit(pre, max_features=max_features)
    x = np.concatenate([_node_metrics(3000, seed=1), _rows_at_thresholds(forest, pre)])
    check = check_forest_parity(forest_to_onnx(forest, 0.55, pre), forest, x, 0.55, pre)
    report = check.report
    assert check.passed, check.failure
    assert report.max_abs_diff <= 1e-5
    assert report.rows == len(x)
    assert report.decisions_identical


@pytest.mark.parametrize("pre", [ForestPreprocessing(), HEAVY_TAILED], ids=["raw", "log1p"])
@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_leaf_decisions_identical_including_rows_at_thresholds(pre: ForestPreprocessing, max_features: float) -> None:
    forest = _fit(pre, max_features=max_features)
    x = np.concatenate([_node_metrics(2000, seed=2), _rows_at_thresholds(forest, pre)])
    session = ort_session(forest_leaf_ids_onnx(forest, pre).SerializeToString())
    (leaf_ids,) = session.run(None, {INPUT_NAME: x})
    x_seen = pre.transform(x)
    for i, (tree, features) in enumerate(zip(forest.estimators_, forest.estimators_features_, strict=True)):
        columns = features if max_features != 1.0 else np.arange(N_FEATURES)
        np.testing.assert_array_equal(leaf_ids[:, i].astype(np.int64), tree.apply(x_seen[:, columns]))


def test_naive_float32_thresholds_would_differ_somewhere() -> None:
    """Guards the test above: rounding to nearest float32 really does flip rows at thresholds."""
    forest = _fit(ForestPreprocessing())
    rounded_up = 0
    for tree in forest.estimators_:
        t = tree.tree_.threshold[tree.tree_.children_left >= 0]
        rounded_up += int((t.astype(np.float32).astype(np.float64) > t).sum())
    assert rounded_up > 0


def test_served_score_is_minus_score_samples_in_unit_interval() -> None:
    forest = _fit(ForestPreprocessing())
    x = _node_metrics(500, seed=3)
    score = native_anomaly_score(forest, x)
    np.testing.assert_allclose(score, -forest.score_samples(x))
    session = ort_session(forest_to_onnx(forest, 0.6).SerializeToString())
    got_score, got_flag = session.run(None, {INPUT_NAME: x})
    assert got_score.shape == (500,) and got_flag.shape == (500,)
    assert got_flag.dtype == np.bool_
    assert ((got_score > 0) & (got_score <= 1)).all()
    np.testing.assert_array_equal(got_flag, got_score >= np.float32(0.6))
    assert [o.name for o in session.get_outputs()] == [SCORE_NAME, FLAG_NAME]


def test_parity_check_fails_for_a_different_forest() -> None:
    forest = _fit(ForestPreprocessing())
    other = IsolationForest(n_estimators=30, random_state=1).fit(_node_metrics(600, seed=9))
    check = check_forest_parity(forest_to_onnx(other, 0.55), forest, _node_metrics(200, 4), 0.55)
    assert f"output {SCORE_NAME!r}" in check.failure and "on row" in check.failure
    with pytest.raises(ParityError, match=SCORE_NAME):
        check.raise_for_failure()


def test_parity_check_fails_when_preprocessing_is_not_folded() -> None:
    forest = _fit(HEAVY_TAILED)
    check = check_forest_parity(forest_to_onnx(forest, 0.55), forest, _node_metrics(200, 4), 0.55, HEAVY_TAILED)
    assert not check.passed


def test_single_row_latency_under_100_us() -> None:
    forest = IsolationForest(n_estimators=100, random_state=42).fit(_node_metrics(2000, seed=5))
    assert forest_latency_us(forest_to_onnx(forest, 0.6), N_FEATURES) < 100.0

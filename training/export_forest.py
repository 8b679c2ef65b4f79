"""Compact ONNX export of a fitted IsolationForest: one TreeEnsembleRegressor over path lengths.

sklearn scores a row as s = 2^(-E[h]/c(max_samples)), where h is the path length in one tree:
depth of the reached leaf + c(samples in that leaf) (sklearn's `_compute_score_samples`), and
`score_samples` returns -s. The served `anomaly_score` is s itself, already in (0, 1]: about 0.5
for ordinary rows, towards 1 for anomalies. Each leaf of the exported ensemble carries its path
length, the ensemble sums them over the trees, and two element-wise ops turn the sum into s.

Optional log1p of heavy-tailed features is folded into the split thresholds (the transform is
monotone), so the graph takes raw `node_metrics` and costs nothing extra per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.ensemble import IsolationForest

from artifacts.session import ort_session
from training.latency import median_latency_us
from training.parity import DEFAULT_TOLERANCE, Decision, ParityCheck, Score, check_parity

INPUT_NAME = "node_metrics"
SCORE_NAME = "anomaly_score"
FLAG_NAME = "is_anomaly"
ONNX_OPSET = 17
ONNX_ML_OPSET = 3
_MAX_F32_KEY = int(np.array(np.finfo(np.float32).max, dtype=np.float32).view(np.int32))


@dataclass(frozen=True)
class ForestPreprocessing:
    """Per-feature transform applied before the forest; folded into the exported thresholds."""

    log1p_features: tuple[int, ...] = ()  # columns fed as log1p(max(x, 0)), for heavy tails

    def transform(self, x_raw: np.ndarray) -> np.ndarray:
        """The float32 matrix the forest is fitted on and scores (what sklearn sees)."""
        x = np.array(x_raw, dtype=np.float32, copy=True)
        for j in self.log1p_features:
            x[:, j] = self.transform_column(x[:, j], j)
        return x

    def transform_column(self, values: np.ndarray, feature: int) -> np.ndarray:
        """Transform one raw float32 column exactly as `transform` does."""
        if feature not in self.log1p_features:
            return np.asarray(values, dtype=np.float32)
        return np.log1p(np.maximum(values.astype(np.float64), 0.0)).astype(np.float32)

    def to_manifest(self) -> dict[str, list[int]]:
        """Constants for manifest.json."""
        return {"log1p_features": list(self.log1p_features)}


def average_path_length(n_samples: np.ndarray) -> np.ndarray:
    """c(n): mean path length of an unsuccessful BST search over n points (as sklearn)."""
    n = np.asarray(n_samples, dtype=np.float64)
    c = np.zeros_like(n)
    c[n == 2] = 1.0
    big = n > 2
    c[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return c


def _key_to_f32(keys: np.ndarray) -> np.ndarray:
    """Map order-preserving integer keys back to float32 values (key 0 is +0.0)."""
    bits = np.where(keys >= 0, keys, (-keys) | 0x80000000).astype(np.uint32)
    return bits.view(np.float32)


def raw_thresholds_f32(thresholds: np.ndarray, feature: int, preprocessing: ForestPreprocessing) -> np.ndarray:
    """Largest float32 raw x with transform(x) <= t, so `x <= result` decides like sklearn.

    sklearn compares the float32 (transformed) feature with a float64 threshold; a binary search
    over all float32 values makes the exported float32 comparison take the identical branch.
    """
    t = np.asarray(thresholds, dtype=np.float64)

    def goes_left(keys: np.ndarray) -> np.ndarray:
        x = preprocessing.transform_column(_key_to_f32(keys), feature)
        return x.astype(np.float64) <= t

    lo = np.full(t.shape, -_MAX_F32_KEY, dtype=np.int64)
    hi = np.full(t.shape, _MAX_F32_KEY, dtype=np.int64)
    all_left, none_left = goes_left(hi), ~goes_left(lo)
    while True:  # invariant: goes_left(lo) and not goes_left(hi) where neither extreme applies
        open_ = (hi - lo > 1) & ~all_left & ~none_left
        if not open_.any():
            break
        mid = (lo + hi) // 2
        left = goes_left(mid)
        lo = np.where(open_ & left, mid, lo)
        hi = np.where(open_ & ~left, mid, hi)
    result = _key_to_f32(lo).copy()
    result[all_left] = np.finfo(np.float32).max
    result[none_left] = -np.inf
    return result


def _tree_feature_map(forest: IsolationForest, tree_index: int) -> np.ndarray:
    """Original column of each feature a tree was fitted on (bagging may subset/permute)."""
    n_features = forest.n_features_in_
    if forest.bootstrap_features or forest._max_features != n_features:
        return np.asarray(forest.estimators_features_[tree_index])
    return np.arange(n_features)


def _ensemble_attributes(
    forest: IsolationForest, preprocessing: ForestPreprocessing, leaf_ids: bool = False
) -> dict[str, Any]:
    """TreeEnsembleRegressor attributes: all trees, leaves weighted by their path length.

    With `leaf_ids`, target t is tree t and a leaf's weight is its node id (for testing).
    """
    attrs: dict[str, list] = {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
        "nodes_truenodeids", "nodes_falsenodeids", "target_treeids", "target_nodeids",
        "target_ids", "target_weights",
    )}  # fmt: skip
    for tree_id, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        features = _tree_feature_map(forest, tree_id)[np.maximum(tree.feature, 0)]
        is_leaf = tree.children_left < 0
        values = np.zeros(tree.node_count, dtype=np.float32)
        for f in np.unique(features[~is_leaf]):
            split = (~is_leaf) & (features == f)
            values[split] = raw_thresholds_f32(tree.threshold[split], int(f), preprocessing)
        # compute_node_depths counts the root as 1; sklearn subtracts that 1 again.
        path_length = tree.compute_node_depths() - 1.0 + average_path_length(tree.n_node_samples)
        nodes = np.arange(tree.node_count)
        attrs["nodes_treeids"] += [tree_id] * tree.node_count
        attrs["nodes_nodeids"] += nodes.tolist()
        attrs["nodes_featureids"] += np.where(is_leaf, 0, features).tolist()
        attrs["nodes_modes"] += ["LEAF" if leaf else "BRANCH_LEQ" for leaf in is_leaf]
        attrs["nodes_values"] += values.tolist()
        attrs["nodes_truenodeids"] += np.maximum(tree.children_left, 0).tolist()
        attrs["nodes_falsenodeids"] += np.maximum(tree.children_right, 0).tolist()
        attrs["target_treeids"] += [tree_id] * int(is_leaf.sum())
        attrs["target_nodeids"] += nodes[is_leaf].tolist()
        attrs["target_ids"] += [tree_id if leaf_ids else 0] * int(is_leaf.sum())
        weights = nodes if leaf_ids else path_length
        attrs["target_weights"] += weights[is_leaf].astype(np.float64).tolist()
    return attrs


def forest_to_onnx(
    forest: IsolationForest,
    threshold: float,
    preprocessing: ForestPreprocessing | None = None,
) -> onnx.ModelProto:
    """Compact graph: node_metrics [N,F] -> anomaly_score [N] (0-1), is_anomaly [N] (>= threshold)."""
    preprocessing = preprocessing or ForestPreprocessing()
    n_trees = len(forest.estimators_)
    c_max = float(average_path_length(np.array([forest._max_samples]))[0])
    if c_max <= 0.0:
        raise ValueError(f"IsolationForest max_samples={forest._max_samples} is too small to export")
    n_features = forest.n_features_in_
    nodes = [
        helper.make_node(
            "TreeEnsembleRegressor", [INPUT_NAME], ["path_length_sum"], domain="ai.onnx.ml",
            n_targets=1, aggregate_function="SUM", post_transform="NONE", base_values=[0.0],
            **_ensemble_attributes(forest, preprocessing),
        ),
        # s = 2^(-sum / (n_trees * c)) = exp(sum * (-ln 2 / (n_trees * c)))
        helper.make_node("Mul", ["path_length_sum", "exponent_per_path_length"], ["exponent"]),
        helper.make_node("Exp", ["exponent"], ["score_column"]),
        helper.make_node("Reshape", ["score_column", "flat_shape"], [SCORE_NAME]),
        helper.make_node("GreaterOrEqual", [SCORE_NAME, "score_threshold"], [FLAG_NAME]),
    ]  # fmt: skip
    constants = [
        helper.make_tensor("exponent_per_path_length", TensorProto.FLOAT, [],
                           [-np.log(2.0) / (n_trees * c_max)]),
        helper.make_tensor("flat_shape", TensorProto.INT64, [1], [-1]),
        helper.make_tensor("score_threshold", TensorProto.FLOAT, [], [threshold]),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "reliability_detector",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", n_features])],
        [
            helper.make_tensor_value_info(SCORE_NAME, TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info(FLAG_NAME, TensorProto.BOOL, ["N"]),
        ],
        initializer=constants,
    )
    opsets = [helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid("ai.onnx.ml", ONNX_ML_OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="dwcp-inference")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def forest_leaf_ids_onnx(forest: IsolationForest, preprocessing: ForestPreprocessing | None = None) -> onnx.ModelProto:
    """Diagnostic graph: node_metrics [N,F] -> leaf_ids [N, n_trees], the leaf each row reaches."""
    attrs = _ensemble_attributes(forest, preprocessing or ForestPreprocessing(), leaf_ids=True)
    n_trees = len(forest.estimators_)
    node = helper.make_node(
        "TreeEnsembleRegressor", [INPUT_NAME], ["leaf_ids"], domain="ai.onnx.ml",
        n_targets=n_trees, aggregate_function="SUM", post_transform="NONE",
        base_values=[0.0] * n_trees, **attrs,
    )  # fmt: skip
    graph = helper.make_graph(
        [node],
        "forest_leaf_ids",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", forest.n_features_in_])],
        [helper.make_tensor_value_info("leaf_ids", TensorProto.FLOAT, ["N", n_trees])],
    )
    opsets = [helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid("ai.onnx.ml", ONNX_ML_OPSET)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    return model


def native_anomaly_score(
    forest: IsolationForest, x_raw: np.ndarray, preprocessing: ForestPreprocessing | None = None
) -> np.ndarray:
    """The served score computed by sklearn: -score_samples = 2^(-E[h]/c), float64 in (0, 1]."""
    preprocessing = preprocessing or ForestPreprocessing()
    return -forest.score_samples(preprocessing.transform(x_raw))


def check_forest_parity(
    model: onnx.ModelProto,
    forest: IsolationForest,
    x_raw: np.ndarray,
    threshold: float,
    preprocessing: ForestPreprocessing | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityCheck:
    """Run the graph in onnxruntime and compare with sklearn (training.parity.check_parity; never raises).

    The score (0-1) may differ by `tolerance`; a decision may only differ on a row whose native score
    lies within `tolerance` of the threshold (a float32/float64 tie); such rows are counted in the report.
    """
    expected_score = native_anomaly_score(forest, x_raw, preprocessing)
    session = ort_session(model.SerializeToString())
    got_score, got_flag = session.run(None, {INPUT_NAME: np.asarray(x_raw, dtype=np.float32)})
    flag = Decision(
        FLAG_NAME, expected_score >= threshold, got_flag,
        tie=np.abs(expected_score - threshold) <= tolerance,
    )  # fmt: skip
    return check_parity([Score(SCORE_NAME, expected_score, got_score)], [flag], tolerance)


def forest_latency_us(model: onnx.ModelProto, n_features: int, batch_rows: int = 1) -> float:
    """Median onnxruntime latency of one call (1 intra-op thread, sequential), microseconds."""
    session = ort_session(model.SerializeToString())
    rng = np.random.default_rng(0)
    feed = {INPUT_NAME: rng.random((batch_rows, n_features), dtype=np.float32)}
    return median_latency_us(session, feed)

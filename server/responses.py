"""Model outputs and manifests into response messages: one builder per RPC, and GetModelInfo's description."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from artifacts.schema import Manifest
from dwcp.inference.v1 import inference_pb2 as pb
from server.rpc_spec import Outputs

if TYPE_CHECKING:  # the runtime imports the spec table, which imports these builders
    from server.runtime import LoadedModel


@cache
def _model_ref_of(name: str, version: str) -> pb.ModelRef:
    return pb.ModelRef(name=name, version=version)


def _model_ref(manifest: Manifest) -> pb.ModelRef:
    """The version's ModelRef, built once (a response constructor copies it; nothing may change it)."""
    return _model_ref_of(manifest.name, manifest.version)


def bandwidth(ids: list[str], out: Outputs, manifest: Manifest) -> pb.PredictBandwidthResponse:
    """PredictBandwidth: one forecast with its interval per link."""
    response = pb.PredictBandwidthResponse(model=_model_ref(manifest))
    level = manifest.constants["interval_level"]
    columns = (out["predicted_throughput_mbps"], out["lower_bound_mbps"], out["upper_bound_mbps"], out["confidence"])
    add = response.predictions.add
    for link_id, predicted, lower, upper, confidence in zip(ids, *(c.tolist() for c in columns), strict=True):
        add(
            link_id=link_id,
            predicted_throughput_mbps=predicted,
            lower_bound_mbps=lower,
            upper_bound_mbps=upper,
            interval_level=level,
            confidence=confidence,
        )
    return response


def compression(ids: list[str], out: Outputs, manifest: Manifest) -> pb.SelectCompressionResponse:
    """SelectCompression: the chosen level, its probability and every level's, per link."""
    response = pb.SelectCompressionResponse(model=_model_ref(manifest))
    rows = out["level_probabilities"].reshape(len(ids), -1).tolist()
    add = response.choices.add
    for link_id, level, row in zip(ids, out["level"].astype(np.int64).tolist(), rows, strict=True):
        add(link_id=link_id, level=level, probability=row[level], level_probabilities=row)
    return response


def anomaly(ids: list[str], out: Outputs, manifest: Manifest) -> pb.DetectAnomalyResponse:
    """DetectAnomaly: score, flag and the threshold behind the flag, per node."""
    response = pb.DetectAnomalyResponse(model=_model_ref(manifest))
    threshold = manifest.thresholds["anomaly_score"]
    add = response.results.add
    for node_id, score, flag in zip(ids, out["anomaly_score"].tolist(), out["is_anomaly"].tolist(), strict=True):
        add(node_id=node_id, anomaly_score=score, is_anomaly=bool(flag), threshold=threshold)
    return response


def high_latency(ids: list[str], out: Outputs, manifest: Manifest) -> pb.DetectHighLatencyResponse:
    """DetectHighLatency: reconstruction error, flag and the threshold behind the flag, per cluster."""
    response = pb.DetectHighLatencyResponse(model=_model_ref(manifest))
    threshold = manifest.thresholds["reconstruction_error"]
    add = response.results.add
    errors, flags = out["reconstruction_error"].tolist(), out["is_high_latency"].tolist()
    for cluster_id, error, flag in zip(ids, errors, flags, strict=True):
        add(cluster_id=cluster_id, reconstruction_error=error, is_high_latency=bool(flag), threshold=threshold)
    return response


def model_info(model: LoadedModel, max_batch_items: int) -> pb.ModelInfo:
    """GetModelInfo's description of one served version, straight from its manifest."""
    m = model.manifest
    return pb.ModelInfo(
        model=_model_ref(m),
        rpc=m.rpc,
        created_utc=m.created_utc,
        inputs=[
            pb.FeatureInfo(
                name=f.name, unit=f.unit, min_value=f.min_value, max_value=f.max_value, description=f.description
            )
            for f in m.input.features
        ],
        outputs=[pb.OutputInfo(name=o.name, unit=o.unit, description=o.description) for o in m.outputs],
        thresholds=m.thresholds,
        metrics=m.metrics,
        onnx_sha256=model.sha256,
        training_data_fingerprint=m.training_data_fingerprint,
        max_batch_items=max_batch_items,
    )

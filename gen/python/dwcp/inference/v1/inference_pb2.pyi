from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinkType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINK_TYPE_UNSPECIFIED: _ClassVar[LinkType]
    LINK_TYPE_DC: _ClassVar[LinkType]
    LINK_TYPE_METRO: _ClassVar[LinkType]
    LINK_TYPE_WAN: _ClassVar[LinkType]
    LINK_TYPE_EDGE: _ClassVar[LinkType]

class NetworkTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NETWORK_TIER_UNSPECIFIED: _ClassVar[NetworkTier]
    NETWORK_TIER_TIER1: _ClassVar[NetworkTier]
    NETWORK_TIER_TIER2: _ClassVar[NetworkTier]
    NETWORK_TIER_TIER3: _ClassVar[NetworkTier]
LINK_TYPE_UNSPECIFIED: LinkType
LINK_TYPE_DC: LinkType
LINK_TYPE_METRO: LinkType
LINK_TYPE_WAN: LinkType
LINK_TYPE_EDGE: LinkType
NETWORK_TIER_UNSPECIFIED: NetworkTier
NETWORK_TIER_TIER1: NetworkTier
NETWORK_TIER_TIER2: NetworkTier
NETWORK_TIER_TIER3: NetworkTier

class ModelRef(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class LinkSample(_message.Message):
    __slots__ = ("rtt_ms", "jitter_ms", "throughput_mbps", "packet_loss_ratio", "link_type", "network_tier", "congestion_window_segments")
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_MBPS_FIELD_NUMBER: _ClassVar[int]
    PACKET_LOSS_RATIO_FIELD_NUMBER: _ClassVar[int]
    LINK_TYPE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_TIER_FIELD_NUMBER: _ClassVar[int]
    CONGESTION_WINDOW_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    rtt_ms: float
    jitter_ms: float
    throughput_mbps: float
    packet_loss_ratio: float
    link_type: LinkType
    network_tier: NetworkTier
    congestion_window_segments: float
    def __init__(self, rtt_ms: _Optional[float] = ..., jitter_ms: _Optional[float] = ..., throughput_mbps: _Optional[float] = ..., packet_loss_ratio: _Optional[float] = ..., link_type: _Optional[_Union[LinkType, str]] = ..., network_tier: _Optional[_Union[NetworkTier, str]] = ..., congestion_window_segments: _Optional[float] = ...) -> None: ...

class LinkWindow(_message.Message):
    __slots__ = ("link_id", "samples")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    samples: _containers.RepeatedCompositeFieldContainer[LinkSample]
    def __init__(self, link_id: _Optional[str] = ..., samples: _Optional[_Iterable[_Union[LinkSample, _Mapping]]] = ...) -> None: ...

class PredictBandwidthRequest(_message.Message):
    __slots__ = ("links",)
    LINKS_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[LinkWindow]
    def __init__(self, links: _Optional[_Iterable[_Union[LinkWindow, _Mapping]]] = ...) -> None: ...

class BandwidthPrediction(_message.Message):
    __slots__ = ("link_id", "predicted_throughput_mbps", "lower_bound_mbps", "upper_bound_mbps", "interval_level", "confidence")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_THROUGHPUT_MBPS_FIELD_NUMBER: _ClassVar[int]
    LOWER_BOUND_MBPS_FIELD_NUMBER: _ClassVar[int]
    UPPER_BOUND_MBPS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_LEVEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    predicted_throughput_mbps: float
    lower_bound_mbps: float
    upper_bound_mbps: float
    interval_level: float
    confidence: float
    def __init__(self, link_id: _Optional[str] = ..., predicted_throughput_mbps: _Optional[float] = ..., lower_bound_mbps: _Optional[float] = ..., upper_bound_mbps: _Optional[float] = ..., interval_level: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class PredictBandwidthResponse(_message.Message):
    __slots__ = ("predictions", "model")
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    predictions: _containers.RepeatedCompositeFieldContainer[BandwidthPrediction]
    model: ModelRef
    def __init__(self, predictions: _Optional[_Iterable[_Union[BandwidthPrediction, _Mapping]]] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ...) -> None: ...

class CompressionFeatures(_message.Message):
    __slots__ = ("link_id", "throughput_mbps", "rtt_ms", "link_type", "hde_compression_ratio", "hde_delta_hit_ratio", "amst_transfer_rate_mbps")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_MBPS_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    LINK_TYPE_FIELD_NUMBER: _ClassVar[int]
    HDE_COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    HDE_DELTA_HIT_RATIO_FIELD_NUMBER: _ClassVar[int]
    AMST_TRANSFER_RATE_MBPS_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    throughput_mbps: float
    rtt_ms: float
    link_type: LinkType
    hde_compression_ratio: float
    hde_delta_hit_ratio: float
    amst_transfer_rate_mbps: float
    def __init__(self, link_id: _Optional[str] = ..., throughput_mbps: _Optional[float] = ..., rtt_ms: _Optional[float] = ..., link_type: _Optional[_Union[LinkType, str]] = ..., hde_compression_ratio: _Optional[float] = ..., hde_delta_hit_ratio: _Optional[float] = ..., amst_transfer_rate_mbps: _Optional[float] = ...) -> None: ...

class SelectCompressionRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CompressionFeatures]
    def __init__(self, items: _Optional[_Iterable[_Union[CompressionFeatures, _Mapping]]] = ...) -> None: ...

class CompressionChoice(_message.Message):
    __slots__ = ("link_id", "level", "probability", "level_probabilities")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    LEVEL_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    level: int
    probability: float
    level_probabilities: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, link_id: _Optional[str] = ..., level: _Optional[int] = ..., probability: _Optional[float] = ..., level_probabilities: _Optional[_Iterable[float]] = ...) -> None: ...

class SelectCompressionResponse(_message.Message):
    __slots__ = ("choices", "model")
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    choices: _containers.RepeatedCompositeFieldContainer[CompressionChoice]
    model: ModelRef
    def __init__(self, choices: _Optional[_Iterable[_Union[CompressionChoice, _Mapping]]] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ...) -> None: ...

class NodeMetrics(_message.Message):
    __slots__ = ("node_id", "uptime_pct", "failure_ratio", "packet_loss_ratio", "retransmits_count", "error_budget_burn_rate", "rtt_ms")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    UPTIME_PCT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_RATIO_FIELD_NUMBER: _ClassVar[int]
    PACKET_LOSS_RATIO_FIELD_NUMBER: _ClassVar[int]
    RETRANSMITS_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_BUDGET_BURN_RATE_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    uptime_pct: float
    failure_ratio: float
    packet_loss_ratio: float
    retransmits_count: float
    error_budget_burn_rate: float
    rtt_ms: float
    def __init__(self, node_id: _Optional[str] = ..., uptime_pct: _Optional[float] = ..., failure_ratio: _Optional[float] = ..., packet_loss_ratio: _Optional[float] = ..., retransmits_count: _Optional[float] = ..., error_budget_burn_rate: _Optional[float] = ..., rtt_ms: _Optional[float] = ...) -> None: ...

class DetectAnomalyRequest(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeMetrics]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeMetrics, _Mapping]]] = ...) -> None: ...

class AnomalyResult(_message.Message):
    __slots__ = ("node_id", "anomaly_score", "is_anomaly", "threshold")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_SCORE_FIELD_NUMBER: _ClassVar[int]
    IS_ANOMALY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    anomaly_score: float
    is_anomaly: bool
    threshold: float
    def __init__(self, node_id: _Optional[str] = ..., anomaly_score: _Optional[float] = ..., is_anomaly: _Optional[bool] = ..., threshold: _Optional[float] = ...) -> None: ...

class DetectAnomalyResponse(_message.Message):
    __slots__ = ("results", "model")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[AnomalyResult]
    model: ModelRef
    def __init__(self, results: _Optional[_Iterable[_Union[AnomalyResult, _Mapping]]] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ...) -> None: ...

class LatencyWindow(_message.Message):
    __slots__ = ("cluster_id", "consensus_latencies_ms")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENSUS_LATENCIES_MS_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    consensus_latencies_ms: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, cluster_id: _Optional[str] = ..., consensus_latencies_ms: _Optional[_Iterable[float]] = ...) -> None: ...

class DetectHighLatencyRequest(_message.Message):
    __slots__ = ("windows",)
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    windows: _containers.RepeatedCompositeFieldContainer[LatencyWindow]
    def __init__(self, windows: _Optional[_Iterable[_Union[LatencyWindow, _Mapping]]] = ...) -> None: ...

class HighLatencyResult(_message.Message):
    __slots__ = ("cluster_id", "reconstruction_error", "is_high_latency", "threshold")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    RECONSTRUCTION_ERROR_FIELD_NUMBER: _ClassVar[int]
    IS_HIGH_LATENCY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    reconstruction_error: float
    is_high_latency: bool
    threshold: float
    def __init__(self, cluster_id: _Optional[str] = ..., reconstruction_error: _Optional[float] = ..., is_high_latency: _Optional[bool] = ..., threshold: _Optional[float] = ...) -> None: ...

class DetectHighLatencyResponse(_message.Message):
    __slots__ = ("results", "model")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[HighLatencyResult]
    model: ModelRef
    def __init__(self, results: _Optional[_Iterable[_Union[HighLatencyResult, _Mapping]]] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ("model_name",)
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    def __init__(self, model_name: _Optional[str] = ...) -> None: ...

class FeatureInfo(_message.Message):
    __slots__ = ("name", "unit", "min_value", "max_value", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    MIN_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAX_VALUE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    unit: str
    min_value: float
    max_value: float
    description: str
    def __init__(self, name: _Optional[str] = ..., unit: _Optional[str] = ..., min_value: _Optional[float] = ..., max_value: _Optional[float] = ..., description: _Optional[str] = ...) -> None: ...

class OutputInfo(_message.Message):
    __slots__ = ("name", "unit", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    unit: str
    description: str
    def __init__(self, name: _Optional[str] = ..., unit: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model", "rpc", "created_utc", "inputs", "outputs", "thresholds", "metrics", "onnx_sha256", "training_data_fingerprint", "max_batch_items")
    class ThresholdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    CREATED_UTC_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ONNX_SHA256_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_ITEMS_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    rpc: str
    created_utc: str
    inputs: _containers.RepeatedCompositeFieldContainer[FeatureInfo]
    outputs: _containers.RepeatedCompositeFieldContainer[OutputInfo]
    thresholds: _containers.ScalarMap[str, float]
    metrics: _containers.ScalarMap[str, float]
    onnx_sha256: str
    training_data_fingerprint: str
    max_batch_items: int
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ..., rpc: _Optional[str] = ..., created_utc: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[FeatureInfo, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[OutputInfo, _Mapping]]] = ..., thresholds: _Optional[_Mapping[str, float]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., onnx_sha256: _Optional[str] = ..., training_data_fingerprint: _Optional[str] = ..., max_batch_items: _Optional[int] = ...) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

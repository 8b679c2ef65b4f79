// Heuristic answers for when the service cannot answer in time (WithFallback).

package dwcpinference

// FallbackModelVersion is the ModelVersion of every result the heuristic produced.
const FallbackModelVersion = "heuristic-fallback"

// Fallback constants, the values DWCP used before the model service existed.
const (
	// FallbackBandwidthConfidence is the confidence of a fallback bandwidth prediction: low, so callers that
	// gate on confidence treat it as a rough guess.
	FallbackBandwidthConfidence = 0.1
	// FallbackCompressionLevel is DWCP's default compression level.
	FallbackCompressionLevel = 3
)

// FallbackBandwidth predicts the next throughput as the last sample's ThroughputMbps (persistence: of the
// naive rules, the one with the lowest error on the real traces of docs/model-report/real-data; the
// 10-sample mean was 8-78 % worse per trace), with the interval spanning the samples' min..max, Confidence
// FallbackBandwidthConfidence and IntervalLevel 0 (the coverage of that interval is unknown).
func FallbackBandwidth(w LinkWindow) BandwidthPrediction {
	p := BandwidthPrediction{
		LinkID: w.LinkID, Confidence: FallbackBandwidthConfidence,
		ModelName: ModelBandwidthPredictor, ModelVersion: FallbackModelVersion,
	}
	if len(w.Samples) == 0 {
		return p
	}
	lo, hi := w.Samples[0].ThroughputMbps, w.Samples[0].ThroughputMbps
	for _, s := range w.Samples {
		lo, hi = min(lo, s.ThroughputMbps), max(hi, s.ThroughputMbps)
	}
	p.PredictedThroughputMbps = w.Samples[len(w.Samples)-1].ThroughputMbps
	p.LowerBoundMbps, p.UpperBoundMbps = lo, hi
	return p
}

// FallbackCompression chooses FallbackCompressionLevel (DWCP's default, 3) with Probability 0 and no
// per-level probabilities, since no model gave any.
func FallbackCompression(f CompressionFeatures) CompressionChoice {
	return CompressionChoice{
		LinkID: f.LinkID, Level: FallbackCompressionLevel,
		ModelName: ModelCompressionSelector, ModelVersion: FallbackModelVersion,
	}
}

// FallbackAnomaly reports the node as not anomalous: AnomalyScore 0, IsAnomaly false, Threshold 1. Without
// a model the client cannot tell, and a false alarm (evicting a healthy node) costs more in DWCP's data
// path than a missed one that the next successful call will catch.
func FallbackAnomaly(n NodeMetrics) AnomalyResult {
	return AnomalyResult{
		NodeID: n.NodeID, Threshold: 1,
		ModelName: ModelReliabilityDetector, ModelVersion: FallbackModelVersion,
	}
}

// FallbackLatency reports the window as not high latency: ReconstructionError 0, IsHighLatency false,
// Threshold 0.
func FallbackLatency(w LatencyWindow) LatencyResult {
	return LatencyResult{
		ClusterID: w.ClusterID, ModelName: ModelConsensusLatency, ModelVersion: FallbackModelVersion,
	}
}

// fallbackAll applies a per-item heuristic to a batch.
func fallbackAll[In, Out any](items []In, f func(In) Out) []Out {
	out := make([]Out, len(items))
	for i, it := range items {
		out[i] = f(it)
	}
	return out
}

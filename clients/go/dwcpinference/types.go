// Requests and results of the four model RPCs as plain Go types, with units in every field name.

package dwcpinference

import (
	"fmt"
	"time"
)

// Sequence lengths the models are trained on; any other length is refused with ErrInvalidInput.
const (
	// BandwidthWindowSamples is the number of consecutive samples PredictBandwidth needs per link.
	BandwidthWindowSamples = 10
	// LatencyWindowSamples is the number of consecutive consensus latencies DetectHighLatency needs.
	LatencyWindowSamples = 20
)

// Model names as served; every result carries the name and version of the model that produced it.
const (
	ModelBandwidthPredictor  = "bandwidth_predictor"
	ModelCompressionSelector = "compression_selector"
	ModelReliabilityDetector = "reliability_detector"
	ModelConsensusLatency    = "consensus_latency"
)

// LinkType is the kind of network path a link crosses. The zero value is refused by the service.
type LinkType int32

// Link types; the numbers are the proto enum values.
const (
	LinkTypeUnspecified LinkType = 0 // not set: refused with ErrInvalidInput
	LinkTypeDC          LinkType = 1 // inside one datacenter: highest capacity, lowest RTT
	LinkTypeMetro       LinkType = 2 // between datacenters of one metro area
	LinkTypeWAN         LinkType = 3 // long-haul wide-area link between regions
	LinkTypeEdge        LinkType = 4 // edge or last-mile link: lowest capacity, most variable
)

// String returns the lower-case name DWCP's telemetry uses ("dc", "metro", "wan", "edge").
func (t LinkType) String() string {
	switch t {
	case LinkTypeDC:
		return "dc"
	case LinkTypeMetro:
		return "metro"
	case LinkTypeWAN:
		return "wan"
	case LinkTypeEdge:
		return "edge"
	case LinkTypeUnspecified:
		return "unspecified"
	}
	return fmt.Sprintf("LinkType(%d)", int32(t))
}

// NetworkTier is the service tier a link is provisioned at. The zero value is refused by the service.
type NetworkTier int32

// Network tiers; the numbers are the proto enum values.
const (
	NetworkTierUnspecified NetworkTier = 0 // not set: refused with ErrInvalidInput
	NetworkTier1           NetworkTier = 1 // premium tier
	NetworkTier2           NetworkTier = 2 // standard tier
	NetworkTier3           NetworkTier = 3 // best-effort tier
)

// String returns "tier1", "tier2" or "tier3".
func (t NetworkTier) String() string {
	switch t {
	case NetworkTier1, NetworkTier2, NetworkTier3:
		return fmt.Sprintf("tier%d", int32(t))
	case NetworkTierUnspecified:
		return "unspecified"
	}
	return fmt.Sprintf("NetworkTier(%d)", int32(t))
}

// Milliseconds converts a duration to the float64 milliseconds the RTTMs-style fields expect.
func Milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// LinkSample is one telemetry sample of one link over one sample interval.
type LinkSample struct {
	RTTMs                    float64     // round-trip time, ms, 0 < RTTMs <= 10000
	JitterMs                 float64     // RTT jitter (mean absolute deviation), ms, 0-10000
	ThroughputMbps           float64     // achieved throughput, megabits per second, 0-400000
	PacketLossRatio          float64     // fraction of packets lost, 0-1 (not percent)
	LinkType                 LinkType    // kind of link; required
	NetworkTier              NetworkTier // service tier; required
	CongestionWindowSegments float64     // sender congestion window in segments (MSS units), 1-10000000
}

// LinkWindow is the recent history of one link: exactly BandwidthWindowSamples samples, oldest first.
type LinkWindow struct {
	LinkID  string // caller's identifier, echoed in the prediction; optional, at most 256 bytes
	Samples []LinkSample
}

// BandwidthPrediction is the forecast of a link's throughput over the next sample interval.
type BandwidthPrediction struct {
	LinkID                  string
	PredictedThroughputMbps float64 // point prediction, Mbps, >= 0
	LowerBoundMbps          float64 // lower end of the prediction interval, Mbps
	UpperBoundMbps          float64 // upper end of the prediction interval, Mbps
	IntervalLevel           float64 // nominal coverage of the interval, 0-1 (0 for the fallback: unknown)
	Confidence              float64 // 1 minus the interval's relative half-width, 0-1
	ModelName               string
	ModelVersion            string // FallbackModelVersion when the heuristic answered
}

// IsFallback reports whether the client's heuristic produced this result instead of the model.
func (p BandwidthPrediction) IsFallback() bool { return p.ModelVersion == FallbackModelVersion }

// CompressionFeatures describe one link and the data about to cross it.
type CompressionFeatures struct {
	LinkID               string   // caller's identifier, echoed; optional
	ThroughputMbps       float64  // current link throughput, Mbps, 0 < x <= 400000
	RTTMs                float64  // current round-trip time, ms, 0 < x <= 10000
	LinkType             LinkType // required
	HDECompressionRatio  float64  // recent HDE ratio, uncompressed / compressed bytes, >= 1
	HDEDeltaHitRatio     float64  // fraction of recent chunks served by delta encoding, 0-1
	AMSTTransferRateMbps float64  // AMST aggregate rate over all streams, Mbps, 0-400000
}

// CompressionChoice is the compression level chosen for one link.
type CompressionChoice struct {
	LinkID             string
	Level              int       // 0 (none) to 9 (strongest)
	Probability        float64   // the model's probability for Level, 0-1 (0 for the fallback)
	LevelProbabilities []float64 // probability of every level, indexed by level (nil for the fallback)
	ModelName          string
	ModelVersion       string
}

// IsFallback reports whether the client's heuristic produced this result instead of the model.
func (c CompressionChoice) IsFallback() bool { return c.ModelVersion == FallbackModelVersion }

// NodeMetrics are the reliability metrics of one node over one sample interval.
type NodeMetrics struct {
	NodeID              string  // caller's identifier, echoed; optional
	UptimePct           float64 // share of the interval the node was up, percent 0-100
	FailureRatio        float64 // fraction of operations that failed, 0-1
	PacketLossRatio     float64 // fraction of packets lost, 0-1
	RetransmitsCount    float64 // retransmitted segments over the interval, >= 0
	ErrorBudgetBurnRate float64 // how many times faster than sustainable the SLO budget burns, >= 0
	RTTMs               float64 // round-trip time, ms, 0 < x <= 10000
}

// AnomalyResult is the verdict for one node.
type AnomalyResult struct {
	NodeID       string
	AnomalyScore float64 // 0 (typical) to 1 (most anomalous)
	IsAnomaly    bool    // AnomalyScore >= Threshold
	Threshold    float64 // score threshold chosen at training time
	ModelName    string
	ModelVersion string
}

// IsFallback reports whether the client's heuristic produced this result instead of the model.
func (a AnomalyResult) IsFallback() bool { return a.ModelVersion == FallbackModelVersion }

// LatencyWindow is the recent consensus latency of one cluster: exactly LatencyWindowSamples values in
// milliseconds, oldest first, each 0-600000.
type LatencyWindow struct {
	ClusterID            string // caller's identifier, echoed; optional
	ConsensusLatenciesMs []float64
}

// LatencyResult is the verdict for one latency window.
type LatencyResult struct {
	ClusterID           string
	ReconstructionError float64 // autoencoder mean squared error in scaled units, >= 0
	IsHighLatency       bool    // ReconstructionError > Threshold
	Threshold           float64
	ModelName           string
	ModelVersion        string
}

// IsFallback reports whether the client's heuristic produced this result instead of the model.
func (l LatencyResult) IsFallback() bool { return l.ModelVersion == FallbackModelVersion }

// FeatureInfo describes one input feature as the model expects it.
type FeatureInfo struct {
	Name        string  // the request field, e.g. "rtt_ms"
	Unit        string  // e.g. "ms", "Mbps", "ratio 0-1", "enum"
	MinValue    float64 // smallest accepted value, inclusive
	MaxValue    float64 // largest accepted value, inclusive
	Description string
}

// OutputInfo describes one model output.
type OutputInfo struct {
	Name        string
	Unit        string
	Description string
}

// ModelInfo describes one served model version.
type ModelInfo struct {
	Name                    string
	Version                 string
	RPC                     string    // the RPC this model answers, e.g. "PredictBandwidth"
	Created                 time.Time // zero if the server sent no parsable RFC 3339 time
	Inputs                  []FeatureInfo
	Outputs                 []OutputInfo
	Thresholds              map[string]float64
	Metrics                 map[string]float64 // measured on the held-out test split at training time
	ONNXSHA256              string
	TrainingDataFingerprint string
	MaxBatchItems           int // largest batch the server accepts for this RPC
}

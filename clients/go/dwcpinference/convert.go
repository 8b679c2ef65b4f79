// Conversion between the package's Go types and the generated protobuf messages, with the local checks
// that save a round trip (empty batches, wrong sequence lengths).

package dwcpinference

import (
	"fmt"
	"time"

	inferencev1 "github.com/dwcp/dwcp-inference/clients/go/gen/dwcp/inference/v1"
)

// checkBatch refuses an empty batch locally, naming the request field as the server would.
func checkBatch(field string, n int) error {
	if n == 0 {
		return &InvalidInputError{Field: field, Reason: "at least 1 item is required", Local: true}
	}
	return nil
}

// checkLength refuses a sequence of the wrong length locally.
func checkLength(fieldFormat string, item, got, want int) error {
	if got != want { // the field path is formatted only for a refusal, not for every item of every call
		return &InvalidInputError{
			Field:  fmt.Sprintf(fieldFormat, item),
			Reason: fmt.Sprintf("expected exactly %d values, got %d", want, got), Local: true,
		}
	}
	return nil
}

func bandwidthRequest(windows []LinkWindow) (*inferencev1.PredictBandwidthRequest, error) {
	if err := checkBatch("links", len(windows)); err != nil {
		return nil, err
	}
	req := &inferencev1.PredictBandwidthRequest{Links: make([]*inferencev1.LinkWindow, len(windows))}
	for i, w := range windows {
		if err := checkLength("links[%d].samples", i, len(w.Samples), BandwidthWindowSamples); err != nil {
			return nil, err
		}
		pw := &inferencev1.LinkWindow{LinkId: w.LinkID, Samples: make([]*inferencev1.LinkSample, len(w.Samples))}
		for j, s := range w.Samples {
			pw.Samples[j] = &inferencev1.LinkSample{
				RttMs:                    s.RTTMs,
				JitterMs:                 s.JitterMs,
				ThroughputMbps:           s.ThroughputMbps,
				PacketLossRatio:          s.PacketLossRatio,
				LinkType:                 inferencev1.LinkType(s.LinkType),
				NetworkTier:              inferencev1.NetworkTier(s.NetworkTier),
				CongestionWindowSegments: s.CongestionWindowSegments,
			}
		}
		req.Links[i] = pw
	}
	return req, nil
}

func compressionRequest(items []CompressionFeatures) (*inferencev1.SelectCompressionRequest, error) {
	if err := checkBatch("items", len(items)); err != nil {
		return nil, err
	}
	req := &inferencev1.SelectCompressionRequest{Items: make([]*inferencev1.CompressionFeatures, len(items))}
	for i, f := range items {
		req.Items[i] = &inferencev1.CompressionFeatures{
			LinkId:               f.LinkID,
			ThroughputMbps:       f.ThroughputMbps,
			RttMs:                f.RTTMs,
			LinkType:             inferencev1.LinkType(f.LinkType),
			HdeCompressionRatio:  f.HDECompressionRatio,
			HdeDeltaHitRatio:     f.HDEDeltaHitRatio,
			AmstTransferRateMbps: f.AMSTTransferRateMbps,
		}
	}
	return req, nil
}

func anomalyRequest(nodes []NodeMetrics) (*inferencev1.DetectAnomalyRequest, error) {
	if err := checkBatch("nodes", len(nodes)); err != nil {
		return nil, err
	}
	req := &inferencev1.DetectAnomalyRequest{Nodes: make([]*inferencev1.NodeMetrics, len(nodes))}
	for i, n := range nodes {
		req.Nodes[i] = &inferencev1.NodeMetrics{
			NodeId:              n.NodeID,
			UptimePct:           n.UptimePct,
			FailureRatio:        n.FailureRatio,
			PacketLossRatio:     n.PacketLossRatio,
			RetransmitsCount:    n.RetransmitsCount,
			ErrorBudgetBurnRate: n.ErrorBudgetBurnRate,
			RttMs:               n.RTTMs,
		}
	}
	return req, nil
}

func latencyRequest(windows []LatencyWindow) (*inferencev1.DetectHighLatencyRequest, error) {
	if err := checkBatch("windows", len(windows)); err != nil {
		return nil, err
	}
	req := &inferencev1.DetectHighLatencyRequest{Windows: make([]*inferencev1.LatencyWindow, len(windows))}
	for i, w := range windows {
		err := checkLength("windows[%d].consensus_latencies_ms", i, len(w.ConsensusLatenciesMs), LatencyWindowSamples)
		if err != nil {
			return nil, err
		}
		req.Windows[i] = &inferencev1.LatencyWindow{
			ClusterId:            w.ClusterID,
			ConsensusLatenciesMs: append([]float64(nil), w.ConsensusLatenciesMs...),
		}
	}
	return req, nil
}

// checkCount guards against a server answering a different number of items than it was asked.
func checkCount(rpc string, got, want int) error {
	if got != want {
		return fmt.Errorf("dwcpinference: %s answered %d items for %d requested", rpc, got, want)
	}
	return nil
}

func bandwidthResults(resp *inferencev1.PredictBandwidthResponse) []BandwidthPrediction {
	name, version := resp.GetModel().GetName(), resp.GetModel().GetVersion()
	out := make([]BandwidthPrediction, len(resp.GetPredictions()))
	for i, p := range resp.GetPredictions() {
		out[i] = BandwidthPrediction{
			LinkID:                  p.GetLinkId(),
			PredictedThroughputMbps: p.GetPredictedThroughputMbps(),
			LowerBoundMbps:          p.GetLowerBoundMbps(),
			UpperBoundMbps:          p.GetUpperBoundMbps(),
			IntervalLevel:           p.GetIntervalLevel(),
			Confidence:              p.GetConfidence(),
			ModelName:               name,
			ModelVersion:            version,
		}
	}
	return out
}

func compressionResults(resp *inferencev1.SelectCompressionResponse) []CompressionChoice {
	name, version := resp.GetModel().GetName(), resp.GetModel().GetVersion()
	out := make([]CompressionChoice, len(resp.GetChoices()))
	for i, c := range resp.GetChoices() {
		out[i] = CompressionChoice{
			LinkID:             c.GetLinkId(),
			Level:              int(c.GetLevel()),
			Probability:        c.GetProbability(),
			LevelProbabilities: c.GetLevelProbabilities(),
			ModelName:          name,
			ModelVersion:       version,
		}
	}
	return out
}

func anomalyResults(resp *inferencev1.DetectAnomalyResponse) []AnomalyResult {
	name, version := resp.GetModel().GetName(), resp.GetModel().GetVersion()
	out := make([]AnomalyResult, len(resp.GetResults()))
	for i, r := range resp.GetResults() {
		out[i] = AnomalyResult{
			NodeID:       r.GetNodeId(),
			AnomalyScore: r.GetAnomalyScore(),
			IsAnomaly:    r.GetIsAnomaly(),
			Threshold:    r.GetThreshold(),
			ModelName:    name,
			ModelVersion: version,
		}
	}
	return out
}

func latencyResults(resp *inferencev1.DetectHighLatencyResponse) []LatencyResult {
	name, version := resp.GetModel().GetName(), resp.GetModel().GetVersion()
	out := make([]LatencyResult, len(resp.GetResults()))
	for i, r := range resp.GetResults() {
		out[i] = LatencyResult{
			ClusterID:           r.GetClusterId(),
			ReconstructionError: r.GetReconstructionError(),
			IsHighLatency:       r.GetIsHighLatency(),
			Threshold:           r.GetThreshold(),
			ModelName:           name,
			ModelVersion:        version,
		}
	}
	return out
}

func modelInfos(resp *inferencev1.GetModelInfoResponse) []ModelInfo {
	out := make([]ModelInfo, len(resp.GetModels()))
	for i, m := range resp.GetModels() {
		created, _ := time.Parse(time.RFC3339, m.GetCreatedUtc()) // zero when absent or malformed
		info := ModelInfo{
			Name:                    m.GetModel().GetName(),
			Version:                 m.GetModel().GetVersion(),
			RPC:                     m.GetRpc(),
			Created:                 created,
			Thresholds:              m.GetThresholds(),
			Metrics:                 m.GetMetrics(),
			ONNXSHA256:              m.GetOnnxSha256(),
			TrainingDataFingerprint: m.GetTrainingDataFingerprint(),
			MaxBatchItems:           int(m.GetMaxBatchItems()),
		}
		for _, f := range m.GetInputs() {
			info.Inputs = append(info.Inputs, FeatureInfo{
				Name: f.GetName(), Unit: f.GetUnit(), MinValue: f.GetMinValue(), MaxValue: f.GetMaxValue(),
				Description: f.GetDescription(),
			})
		}
		for _, o := range m.GetOutputs() {
			info.Outputs = append(info.Outputs, OutputInfo{Name: o.GetName(), Unit: o.GetUnit(), Description: o.GetDescription()})
		}
		out[i] = info
	}
	return out
}

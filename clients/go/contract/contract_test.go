// Package contract_test checks that the generated Go stubs compile and round-trip each RPC's request.
package contract_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	inferencev1 "github.com/dwcp/dwcp-inference/clients/go/gen/dwcp/inference/v1"
)

func sample() *inferencev1.LinkSample {
	return &inferencev1.LinkSample{
		RttMs: 42, JitterMs: 1.5, ThroughputMbps: 900, PacketLossRatio: 0.001,
		LinkType: inferencev1.LinkType_LINK_TYPE_WAN, NetworkTier: inferencev1.NetworkTier_NETWORK_TIER_TIER2,
		CongestionWindowSegments: 3200,
	}
}

func TestRequestsRoundTrip(t *testing.T) {
	samples := make([]*inferencev1.LinkSample, 10)
	for i := range samples {
		samples[i] = sample()
	}
	latencies := make([]float64, 20)
	for i := range latencies {
		latencies[i] = 12.5 + float64(i)
	}
	cases := []struct {
		name string
		msg  proto.Message
		into proto.Message
	}{
		{"PredictBandwidth", &inferencev1.PredictBandwidthRequest{Links: []*inferencev1.LinkWindow{{LinkId: "a-b", Samples: samples}}}, &inferencev1.PredictBandwidthRequest{}},
		{"SelectCompression", &inferencev1.SelectCompressionRequest{Items: []*inferencev1.CompressionFeatures{{
			LinkId: "a-b", ThroughputMbps: 900, RttMs: 42, LinkType: inferencev1.LinkType_LINK_TYPE_WAN,
			HdeCompressionRatio: 2.5, HdeDeltaHitRatio: 0.3, AmstTransferRateMbps: 850}}}, &inferencev1.SelectCompressionRequest{}},
		{"DetectAnomaly", &inferencev1.DetectAnomalyRequest{Nodes: []*inferencev1.NodeMetrics{{
			NodeId: "n1", UptimePct: 99.9, FailureRatio: 0.001, PacketLossRatio: 0.0005,
			RetransmitsCount: 3, ErrorBudgetBurnRate: 0.4, RttMs: 42}}}, &inferencev1.DetectAnomalyRequest{}},
		{"DetectHighLatency", &inferencev1.DetectHighLatencyRequest{Windows: []*inferencev1.LatencyWindow{{
			ClusterId: "c1", ConsensusLatenciesMs: latencies}}}, &inferencev1.DetectHighLatencyRequest{}},
		{"GetModelInfo", &inferencev1.GetModelInfoRequest{ModelName: "bandwidth_predictor"}, &inferencev1.GetModelInfoRequest{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wire, err := proto.Marshal(tc.msg)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			if err := proto.Unmarshal(wire, tc.into); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if !proto.Equal(tc.msg, tc.into) {
				t.Fatalf("round trip changed the message: %v != %v", tc.msg, tc.into)
			}
		})
	}
}

func TestServiceDescribesEveryRPC(t *testing.T) {
	want := []string{"PredictBandwidth", "SelectCompression", "DetectAnomaly", "DetectHighLatency", "GetModelInfo"}
	desc := inferencev1.InferenceService_ServiceDesc
	if desc.ServiceName != "dwcp.inference.v1.InferenceService" {
		t.Fatalf("service name %q", desc.ServiceName)
	}
	got := map[string]bool{}
	for _, m := range desc.Methods {
		got[m.MethodName] = true
	}
	for _, name := range want {
		if !got[name] {
			t.Errorf("service lacks %s", name)
		}
	}
}

// A fake InferenceServiceServer over bufconn or loopback TCP, and request builders shared by the tests.

package dwcpinference

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	inferencev1 "github.com/dwcp/dwcp-inference/clients/go/gen/dwcp/inference/v1"
)

// fakeServer answers every RPC with canned values derived from the request, after an optional hook.
type fakeServer struct {
	inferencev1.UnimplementedInferenceServiceServer
	version string
	calls   atomic.Int64
	// before runs first in every RPC with the 1-based call number; a non-nil error is returned as is.
	before func(ctx context.Context, call int64) error

	mu      sync.Mutex
	lastReq any
	// remaining is the time left until the call's deadline as the server saw it (0: no deadline).
	remaining time.Duration
}

func (f *fakeServer) enter(ctx context.Context, req any) error {
	n := f.calls.Add(1)
	f.mu.Lock()
	f.lastReq = req
	f.remaining = 0
	if d, ok := ctx.Deadline(); ok {
		f.remaining = time.Until(d)
	}
	f.mu.Unlock()
	if f.before != nil {
		return f.before(ctx, n)
	}
	return nil
}

func (f *fakeServer) model(name string) *inferencev1.ModelRef {
	return &inferencev1.ModelRef{Name: name, Version: f.version}
}

func (f *fakeServer) PredictBandwidth(ctx context.Context, req *inferencev1.PredictBandwidthRequest) (*inferencev1.PredictBandwidthResponse, error) {
	if err := f.enter(ctx, req); err != nil {
		return nil, err
	}
	resp := &inferencev1.PredictBandwidthResponse{Model: f.model(ModelBandwidthPredictor)}
	for _, l := range req.GetLinks() {
		last := l.GetSamples()[len(l.GetSamples())-1].GetThroughputMbps()
		resp.Predictions = append(resp.Predictions, &inferencev1.BandwidthPrediction{
			LinkId: l.GetLinkId(), PredictedThroughputMbps: last, LowerBoundMbps: last * 0.9,
			UpperBoundMbps: last * 1.1, IntervalLevel: 0.9, Confidence: 0.8,
		})
	}
	return resp, nil
}

func (f *fakeServer) SelectCompression(ctx context.Context, req *inferencev1.SelectCompressionRequest) (*inferencev1.SelectCompressionResponse, error) {
	if err := f.enter(ctx, req); err != nil {
		return nil, err
	}
	resp := &inferencev1.SelectCompressionResponse{Model: f.model(ModelCompressionSelector)}
	for _, it := range req.GetItems() {
		probs := make([]float64, 10)
		probs[7] = 1
		resp.Choices = append(resp.Choices, &inferencev1.CompressionChoice{
			LinkId: it.GetLinkId(), Level: 7, Probability: 1, LevelProbabilities: probs,
		})
	}
	return resp, nil
}

func (f *fakeServer) DetectAnomaly(ctx context.Context, req *inferencev1.DetectAnomalyRequest) (*inferencev1.DetectAnomalyResponse, error) {
	if err := f.enter(ctx, req); err != nil {
		return nil, err
	}
	resp := &inferencev1.DetectAnomalyResponse{Model: f.model(ModelReliabilityDetector)}
	for _, n := range req.GetNodes() {
		score := n.GetFailureRatio() // anomalous when failures are frequent: enough for a fake
		resp.Results = append(resp.Results, &inferencev1.AnomalyResult{
			NodeId: n.GetNodeId(), AnomalyScore: score, IsAnomaly: score >= 0.5, Threshold: 0.5,
		})
	}
	return resp, nil
}

func (f *fakeServer) DetectHighLatency(ctx context.Context, req *inferencev1.DetectHighLatencyRequest) (*inferencev1.DetectHighLatencyResponse, error) {
	if err := f.enter(ctx, req); err != nil {
		return nil, err
	}
	resp := &inferencev1.DetectHighLatencyResponse{Model: f.model(ModelConsensusLatency)}
	for _, w := range req.GetWindows() {
		top := w.GetConsensusLatenciesMs()[len(w.GetConsensusLatenciesMs())-1]
		resp.Results = append(resp.Results, &inferencev1.HighLatencyResult{
			ClusterId: w.GetClusterId(), ReconstructionError: top / 1000, IsHighLatency: top > 1000, Threshold: 1,
		})
	}
	return resp, nil
}

func (f *fakeServer) GetModelInfo(ctx context.Context, req *inferencev1.GetModelInfoRequest) (*inferencev1.GetModelInfoResponse, error) {
	if err := f.enter(ctx, req); err != nil {
		return nil, err
	}
	return &inferencev1.GetModelInfoResponse{Models: []*inferencev1.ModelInfo{{
		Model: f.model(ModelBandwidthPredictor), Rpc: "PredictBandwidth", CreatedUtc: "2026-11-26T13:00:00Z",
		Inputs:     []*inferencev1.FeatureInfo{{Name: "rtt_ms", Unit: "ms", MinValue: 0, MaxValue: 10000}},
		Outputs:    []*inferencev1.OutputInfo{{Name: "predicted_throughput_mbps", Unit: "Mbps"}},
		Thresholds: map[string]float64{}, Metrics: map[string]float64{"test_mape": 0.12},
		OnnxSha256: "ab", MaxBatchItems: 1024,
	}}}, nil
}

func (f *fakeServer) lastRequest() any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastReq
}

func (f *fakeServer) lastRemaining() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.remaining
}

// serve registers f on a new gRPC server over lis and stops it when the test ends.
func serve(t testing.TB, f *fakeServer, lis net.Listener) {
	t.Helper()
	srv := grpc.NewServer()
	inferencev1.RegisterInferenceServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
}

// newBufClient serves f over an in-memory bufconn and returns a client for it.
func newBufClient(t testing.TB, f *fakeServer, opts ...Option) *Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	serve(t, f, lis)
	dialer := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
	opts = append([]Option{WithInsecure(), WithDialOptions(grpc.WithContextDialer(dialer))}, opts...)
	c, err := New("passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return c
}

// newTCPFake serves f on a loopback port and returns its address.
func newTCPFake(t testing.TB, f *fakeServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	serve(t, f, lis)
	return lis.Addr().String()
}

// linkSamples returns n plausible WAN samples with throughput 900, 910, ... Mbps.
func linkSamples(n int) []LinkSample {
	s := make([]LinkSample, n)
	for i := range s {
		s[i] = LinkSample{
			RTTMs: 42, JitterMs: 1.5, ThroughputMbps: 900 + 10*float64(i), PacketLossRatio: 0.001,
			LinkType: LinkTypeWAN, NetworkTier: NetworkTier2, CongestionWindowSegments: 3200,
		}
	}
	return s
}

// latencies returns n consensus latencies in ms, 12, 13, ... ms.
func latencies(n int) []float64 {
	l := make([]float64, n)
	for i := range l {
		l[i] = 12 + float64(i)
	}
	return l
}

func compressionFeatures() CompressionFeatures {
	return CompressionFeatures{
		LinkID: "a-b", ThroughputMbps: 900, RTTMs: 42, LinkType: LinkTypeWAN,
		HDECompressionRatio: 2.5, HDEDeltaHitRatio: 0.3, AMSTTransferRateMbps: 850,
	}
}

func nodeMetrics() NodeMetrics {
	return NodeMetrics{
		NodeID: "n1", UptimePct: 99.9, FailureRatio: 0.001, PacketLossRatio: 0.0005,
		RetransmitsCount: 3, ErrorBudgetBurnRate: 0.4, RTTMs: 42,
	}
}

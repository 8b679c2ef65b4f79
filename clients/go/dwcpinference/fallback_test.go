// Fallback: heuristics answer when the service cannot, and never for invalid input.

package dwcpinference

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestFallbackWhenServiceCannotAnswer(t *testing.T) {
	unavailable := func(context.Context, int64) error { return status.Error(codes.Unavailable, "down") }
	overloaded := func(context.Context, int64) error { return status.Error(codes.ResourceExhausted, "shed") }
	slow := func(ctx context.Context, _ int64) error { <-ctx.Done(); return ctx.Err() }
	invalid := func(context.Context, int64) error {
		return status.Error(codes.InvalidArgument, "links[0].samples[0].rtt_ms: must be > 0")
	}
	cases := []struct {
		name         string
		before       func(context.Context, int64) error
		fallback     bool
		wantFallback bool
		wantErr      error
	}{
		{"unavailable, fallback on", unavailable, true, true, nil},
		{"overloaded, fallback on", overloaded, true, true, nil},
		{"too slow, fallback on", slow, true, true, nil},
		{"invalid input, fallback on", invalid, true, false, ErrInvalidInput},
		{"unavailable, fallback off", unavailable, false, false, ErrUnavailable},
		{"too slow, fallback off", slow, false, false, ErrDeadlineExceeded},
		{"healthy, fallback on", nil, true, false, nil},
	}
	for _, tc := range cases {
		for _, rpc := range allRPCs() {
			t.Run(tc.name+"/"+rpc.name, func(t *testing.T) {
				f := &fakeServer{version: "v1", before: tc.before}
				opts := []Option{WithTimeout(20 * time.Millisecond)}
				if tc.fallback {
					opts = append(opts, WithFallback())
				}
				c := newBufClient(t, f, opts...)
				version, err := rpc.call(context.Background(), c)
				if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if got := version == FallbackModelVersion; got != tc.wantFallback {
					t.Fatalf("ModelVersion %q, want fallback %v", version, tc.wantFallback)
				}
			})
		}
	}
}

func TestFallbackNotForCanceledContext(t *testing.T) {
	f := &fakeServer{version: "v1", before: func(ctx context.Context, _ int64) error { <-ctx.Done(); return ctx.Err() }}
	c := newBufClient(t, f, WithFallback(), WithTimeout(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	_, err := c.DetectAnomaly(ctx, nodeMetrics())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled (a caller who gave up wants no answer)", err)
	}
}

func TestFallbackHeuristics(t *testing.T) {
	f := &fakeServer{version: "v1", before: func(context.Context, int64) error { return status.Error(codes.Unavailable, "down") }}
	c := newBufClient(t, f, WithFallback(), WithTimeout(time.Second))
	ctx := context.Background()

	bw, err := c.PredictBandwidthBatch(ctx, []LinkWindow{{LinkID: "a-b", Samples: linkSamples(10)}})
	if err != nil {
		t.Fatal(err)
	}
	// Throughputs 900, 910, ..., 990: the last one (persistence), interval 900..990.
	want := BandwidthPrediction{LinkID: "a-b", PredictedThroughputMbps: 990, LowerBoundMbps: 900, UpperBoundMbps: 990,
		Confidence: 0.1, ModelName: ModelBandwidthPredictor, ModelVersion: FallbackModelVersion}
	if bw[0] != want || !bw[0].IsFallback() {
		t.Errorf("bandwidth fallback %+v, want %+v", bw[0], want)
	}
	cc, err := c.SelectCompression(ctx, compressionFeatures())
	if err != nil || cc.Level != 3 || cc.LinkID != "a-b" || !cc.IsFallback() {
		t.Errorf("compression fallback %+v, %v; want level 3", cc, err)
	}
	an, err := c.DetectAnomaly(ctx, nodeMetrics())
	if err != nil || an.IsAnomaly || an.AnomalyScore != 0 || an.NodeID != "n1" || !an.IsFallback() {
		t.Errorf("anomaly fallback %+v, %v; want not anomalous, score 0", an, err)
	}
	lt, err := c.DetectHighLatencyBatch(ctx, []LatencyWindow{{ClusterID: "c1", ConsensusLatenciesMs: latencies(20)}})
	if err != nil || lt[0].IsHighLatency || lt[0].ClusterID != "c1" || !lt[0].IsFallback() {
		t.Errorf("latency fallback %+v, %v; want not high", lt, err)
	}
	if _, err := c.ModelInfo(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ModelInfo err = %v, want ErrUnavailable (no fallback for model info)", err)
	}
}

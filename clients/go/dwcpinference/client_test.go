// Unit tests over an in-memory server: conversion, options, local checks and the timeout.

package dwcpinference

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	inferencev1 "github.com/dwcp/dwcp-inference/clients/go/gen/dwcp/inference/v1"
)

// rpcCase is one single-item RPC, reduced to what every behaviour test needs from its answer.
type rpcCase struct {
	name string
	call func(ctx context.Context, c *Client) (modelVersion string, err error)
}

func allRPCs() []rpcCase {
	return []rpcCase{
		{"PredictBandwidth", func(ctx context.Context, c *Client) (string, error) {
			p, err := c.PredictBandwidth(ctx, linkSamples(BandwidthWindowSamples))
			return p.ModelVersion, err
		}},
		{"SelectCompression", func(ctx context.Context, c *Client) (string, error) {
			r, err := c.SelectCompression(ctx, compressionFeatures())
			return r.ModelVersion, err
		}},
		{"DetectAnomaly", func(ctx context.Context, c *Client) (string, error) {
			r, err := c.DetectAnomaly(ctx, nodeMetrics())
			return r.ModelVersion, err
		}},
		{"DetectHighLatency", func(ctx context.Context, c *Client) (string, error) {
			r, err := c.DetectHighLatency(ctx, latencies(LatencyWindowSamples))
			return r.ModelVersion, err
		}},
	}
}

func TestNewOptions(t *testing.T) {
	cases := []struct {
		name    string
		target  string
		opts    []Option
		wantErr string // substring; empty means New succeeds
	}{
		{"insecure", "127.0.0.1:1", []Option{WithInsecure()}, ""},
		{"tls", "127.0.0.1:1", []Option{WithTLS(nil)}, ""},
		{"no transport security chosen", "127.0.0.1:1", nil, "choose transport security"},
		{"insecure and tls", "127.0.0.1:1", []Option{WithInsecure(), WithTLS(nil)}, "conflicts"},
		{"nil credentials", "127.0.0.1:1", []Option{WithTransportCredentials(nil)}, "nil credentials"},
		{"negative timeout", "127.0.0.1:1", []Option{WithInsecure(), WithTimeout(-time.Millisecond)}, "negative timeout"},
		{"negative retries", "127.0.0.1:1", []Option{WithInsecure(), WithRetries(-1, 0)}, "negative"},
		{"bad keepalive timeout", "127.0.0.1:1", []Option{WithInsecure(), WithKeepalive(30*time.Second, 0)}, "positive"},
		{"keepalive below the server's policy", "127.0.0.1:1", []Option{WithInsecure(), WithKeepalive(5*time.Second, time.Second)}, "at least 10s"},
		{"keepalive at the minimum", "127.0.0.1:1", []Option{WithInsecure(), WithKeepalive(MinKeepaliveInterval, time.Second)}, ""},
		{"keepalive", "127.0.0.1:1", []Option{WithInsecure(), WithKeepalive(30*time.Second, 5*time.Second)}, ""},
		{"nil connection", "", []Option{WithGRPCConn(nil)}, "nil connection"},
		{"given connection", "", []Option{WithGRPCConn(idleConn(t))}, ""},
		{"given connection and a target", "127.0.0.1:1", []Option{WithGRPCConn(idleConn(t))}, "a target belong"},
		{"given connection and retries", "", []Option{WithGRPCConn(idleConn(t)), WithRetries(2, 0)},
			"WithRetries (a retryPolicy in the connection's service config) belong"},
		{"given connection and its own settings", "", []Option{WithGRPCConn(idleConn(t)), WithInsecure(),
			WithKeepalive(time.Minute, time.Second), WithStaticAddresses("127.0.0.1:2")},
			"WithStaticAddresses, WithInsecure, WithKeepalive belong"},
		{"empty target", "", []Option{WithInsecure()}, "empty target"},
		{"empty target with static list", "", []Option{WithInsecure(), WithStaticAddresses("127.0.0.1:1", "127.0.0.1:2")}, ""},
		{"empty static address", "", []Option{WithInsecure(), WithStaticAddresses("")}, "empty address"},
		{"target list", "127.0.0.1:1,127.0.0.1:2", []Option{WithInsecure()}, ""},
		{"dns target", "dns:///localhost:1", []Option{WithInsecure()}, ""},
		{"dns target in a static list", "dns:///localhost:1", []Option{WithInsecure(), WithStaticAddresses("127.0.0.1:2")}, "replica list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.target, tc.opts...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				_ = c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// idleConn is a connection nothing is asked of, closed when the test ends.
func idleConn(t *testing.T) *grpc.ClientConn {
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestConfigDefaults(t *testing.T) {
	cfg := defaultConfig()
	if cfg.timeout != 10*time.Millisecond || cfg.retries != 0 || cfg.fallback {
		t.Fatalf("defaults = timeout %v, retries %d, fallback %v; want 10ms, 0, false", cfg.timeout, cfg.retries, cfg.fallback)
	}
}

func TestRPCsConvertBothWays(t *testing.T) {
	f := &fakeServer{version: "20261126T130000Z"}
	c := newBufClient(t, f, WithTimeout(5*time.Second))
	ctx := context.Background()

	t.Run("PredictBandwidthBatch", func(t *testing.T) {
		got, err := c.PredictBandwidthBatch(ctx, []LinkWindow{
			{LinkID: "a-b", Samples: linkSamples(10)}, {LinkID: "a-c", Samples: linkSamples(10)},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := BandwidthPrediction{LinkID: "a-c", PredictedThroughputMbps: 990, LowerBoundMbps: 891,
			UpperBoundMbps: 1089, IntervalLevel: 0.9, Confidence: 0.8,
			ModelName: ModelBandwidthPredictor, ModelVersion: "20261126T130000Z"}
		if len(got) != 2 || got[0].LinkID != "a-b" || got[1] != want {
			t.Fatalf("got %+v, want second = %+v", got, want)
		}
		req := f.lastRequest().(*inferencev1.PredictBandwidthRequest)
		s := req.GetLinks()[1].GetSamples()[9]
		if s.GetRttMs() != 42 || s.GetLinkType() != inferencev1.LinkType_LINK_TYPE_WAN ||
			s.GetNetworkTier() != inferencev1.NetworkTier_NETWORK_TIER_TIER2 || s.GetCongestionWindowSegments() != 3200 {
			t.Fatalf("sample sent as %v", s)
		}
	})
	t.Run("SelectCompression", func(t *testing.T) {
		got, err := c.SelectCompression(ctx, compressionFeatures())
		if err != nil {
			t.Fatal(err)
		}
		if got.Level != 7 || got.Probability != 1 || len(got.LevelProbabilities) != 10 || got.LinkID != "a-b" ||
			got.ModelName != ModelCompressionSelector || got.IsFallback() {
			t.Fatalf("got %+v", got)
		}
		req := f.lastRequest().(*inferencev1.SelectCompressionRequest).GetItems()[0]
		if req.GetHdeCompressionRatio() != 2.5 || req.GetAmstTransferRateMbps() != 850 || req.GetHdeDeltaHitRatio() != 0.3 {
			t.Fatalf("features sent as %v", req)
		}
	})
	t.Run("DetectAnomalyBatch", func(t *testing.T) {
		bad := nodeMetrics()
		bad.NodeID, bad.FailureRatio = "n2", 0.9
		got, err := c.DetectAnomalyBatch(ctx, []NodeMetrics{nodeMetrics(), bad})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].IsAnomaly || !got[1].IsAnomaly || got[1].NodeID != "n2" || got[1].Threshold != 0.5 {
			t.Fatalf("got %+v", got)
		}
		req := f.lastRequest().(*inferencev1.DetectAnomalyRequest).GetNodes()[0]
		if req.GetUptimePct() != 99.9 || req.GetRetransmitsCount() != 3 || req.GetErrorBudgetBurnRate() != 0.4 {
			t.Fatalf("metrics sent as %v", req)
		}
	})
	t.Run("DetectHighLatencyBatch", func(t *testing.T) {
		high := latencies(20)
		high[19] = 5000
		got, err := c.DetectHighLatencyBatch(ctx, []LatencyWindow{{ClusterID: "c1", ConsensusLatenciesMs: latencies(20)}, {ClusterID: "c2", ConsensusLatenciesMs: high}})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].IsHighLatency || !got[1].IsHighLatency || got[1].ClusterID != "c2" || got[1].ReconstructionError != 5 {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("ModelInfo", func(t *testing.T) {
		got, err := c.ModelInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := got[0]
		if m.Name != ModelBandwidthPredictor || m.RPC != "PredictBandwidth" || m.MaxBatchItems != 1024 ||
			!m.Created.Equal(time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)) || m.Inputs[0].Unit != "ms" ||
			m.Metrics["test_mape"] != 0.12 {
			t.Fatalf("got %+v", m)
		}
	})
}

func TestLocalChecksRefuseWithoutRoundTrip(t *testing.T) {
	f := &fakeServer{version: "v1"}
	c := newBufClient(t, f, WithTimeout(5*time.Second))
	ctx := context.Background()
	cases := []struct {
		name      string
		call      func() error
		wantField string
	}{
		{"9 samples", func() error { _, err := c.PredictBandwidth(ctx, linkSamples(9)); return err }, "links[0].samples"},
		{"11 samples in second window", func() error {
			_, err := c.PredictBandwidthBatch(ctx, []LinkWindow{{Samples: linkSamples(10)}, {Samples: linkSamples(11)}})
			return err
		}, "links[1].samples"},
		{"no windows", func() error { _, err := c.PredictBandwidthBatch(ctx, nil); return err }, "links"},
		{"19 latencies", func() error { _, err := c.DetectHighLatency(ctx, latencies(19)); return err }, "windows[0].consensus_latencies_ms"},
		{"no latency windows", func() error { _, err := c.DetectHighLatencyBatch(ctx, []LatencyWindow{}); return err }, "windows"},
		{"no compression items", func() error { _, err := c.SelectCompressionBatch(ctx, nil); return err }, "items"},
		{"no nodes", func() error { _, err := c.DetectAnomalyBatch(ctx, nil); return err }, "nodes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.calls.Load()
			err := tc.call()
			var iie *InvalidInputError
			if !errors.Is(err, ErrInvalidInput) || !errors.As(err, &iie) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			if iie.Field != tc.wantField || !iie.Local {
				t.Fatalf("field %q local %v, want %q local", iie.Field, iie.Local, tc.wantField)
			}
			if f.calls.Load() != before {
				t.Fatal("a locally refused request reached the server")
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	slow := func(ctx context.Context, _ int64) error {
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
		return nil
	}
	cases := []struct {
		name         string
		opts         []Option
		callerBudget time.Duration // 0: context.Background
		serverSlow   bool
		wantErr      error
		maxRemaining time.Duration // upper bound of the deadline the server sees
		maxElapsed   time.Duration
	}{
		{"default is 10ms", nil, 0, false, nil, 10 * time.Millisecond, time.Second},
		{"default expires on a slow server", nil, 0, true, ErrDeadlineExceeded, 10 * time.Millisecond, 150 * time.Millisecond},
		{"WithTimeout raises it", []Option{WithTimeout(time.Second)}, 0, false, nil, time.Second, time.Second},
		{"earlier caller deadline wins", []Option{WithTimeout(time.Second)}, 20 * time.Millisecond, true, ErrDeadlineExceeded, 20 * time.Millisecond, 150 * time.Millisecond},
		{"zero leaves the caller's deadline", []Option{WithTimeout(0)}, 30 * time.Millisecond, false, nil, 30 * time.Millisecond, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServer{version: "v1"}
			if tc.serverSlow {
				f.before = slow
			}
			c := newBufClient(t, f, tc.opts...)
			ctx := context.Background()
			if tc.callerBudget > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.callerBudget)
				defer cancel()
			}
			start := time.Now()
			_, err := c.DetectAnomaly(ctx, nodeMetrics())
			elapsed := time.Since(start)
			// A fast call under a 10 ms budget can still miss it on a loaded machine; try a few times.
			for try := 0; tc.wantErr == nil && errors.Is(err, ErrDeadlineExceeded) && try < 5; try++ {
				start = time.Now()
				_, err = c.DetectAnomaly(ctx, nodeMetrics())
				elapsed = time.Since(start)
			}
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("deadline error %v does not match context.DeadlineExceeded", err)
			}
			if r := f.lastRemaining(); r <= 0 || r > tc.maxRemaining {
				t.Fatalf("server saw %v left, want within (0, %v]", r, tc.maxRemaining)
			}
			if elapsed > tc.maxElapsed {
				t.Fatalf("call took %v, want at most %v", elapsed, tc.maxElapsed)
			}
		})
	}
}

func TestModelInfoTimeoutFloor(t *testing.T) {
	f := &fakeServer{version: "v1"}
	c := newBufClient(t, f) // default 10ms per call
	if _, err := c.ModelInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := f.lastRemaining(); r < 500*time.Millisecond || r > time.Second {
		t.Fatalf("GetModelInfo deadline %v away, want about 1s", r)
	}
}

func TestLinkTypeAndTierNames(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{LinkTypeDC.String(), "dc"}, {LinkTypeWAN.String(), "wan"}, {LinkType(9).String(), "LinkType(9)"},
		{NetworkTier3.String(), "tier3"}, {NetworkTierUnspecified.String(), "unspecified"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if int32(LinkTypeEdge) != int32(inferencev1.LinkType_LINK_TYPE_EDGE) || int32(NetworkTier3) != int32(inferencev1.NetworkTier_NETWORK_TIER_TIER3) {
		t.Fatal("Go constants drifted from the proto enum numbers")
	}
	if Milliseconds(1500*time.Microsecond) != 1.5 {
		t.Fatal("Milliseconds(1.5ms) != 1.5")
	}
}

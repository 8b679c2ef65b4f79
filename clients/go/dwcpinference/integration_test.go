// Integration tests against the real Python server (started by harness_test.go); skipped only when
// DWCP_SKIP_INTEGRATION=1.

package dwcpinference

import (
	"context"
	"errors"
	"math"
	"testing"

	"google.golang.org/grpc/status"
)

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// servedVersions maps model name to the version the live server serves, from ModelInfo.
func servedVersions(t *testing.T, c *Client) map[string]string {
	t.Helper()
	infos, err := c.ModelInfo(context.Background())
	if err != nil {
		t.Fatalf("ModelInfo: %v", err)
	}
	wantRPC := map[string]string{
		ModelBandwidthPredictor: "PredictBandwidth", ModelCompressionSelector: "SelectCompression",
		ModelReliabilityDetector: "DetectAnomaly", ModelConsensusLatency: "DetectHighLatency",
	}
	versions := map[string]string{}
	for _, m := range infos {
		if wantRPC[m.Name] != m.RPC || m.Version == "" || len(m.Inputs) == 0 || m.MaxBatchItems < 1 || m.Created.IsZero() {
			t.Errorf("model info %+v", m)
		}
		versions[m.Name] = m.Version
	}
	if len(versions) != len(wantRPC) {
		t.Fatalf("served models %v, want the four of %v", versions, wantRPC)
	}
	return versions
}

func TestLiveEveryRPC(t *testing.T) {
	c := liveClient(t)
	versions := servedVersions(t, c)
	ctx := context.Background()

	t.Run("PredictBandwidthBatch", func(t *testing.T) {
		got, err := c.PredictBandwidthBatch(ctx, []LinkWindow{{LinkID: "a-b", Samples: linkSamples(10)}, {LinkID: "a-c", Samples: linkSamples(10)}})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range got {
			if p.LinkID != []string{"a-b", "a-c"}[i] || !finite(p.PredictedThroughputMbps, p.LowerBoundMbps, p.UpperBoundMbps) ||
				p.PredictedThroughputMbps < 0 || p.LowerBoundMbps > p.UpperBoundMbps || p.Confidence < 0 || p.Confidence > 1 ||
				p.IntervalLevel <= 0 || p.IntervalLevel >= 1 || p.ModelVersion != versions[p.ModelName] || p.ModelName != ModelBandwidthPredictor {
				t.Errorf("prediction %d: %+v", i, p)
			}
		}
	})
	t.Run("SelectCompression", func(t *testing.T) {
		got, err := c.SelectCompression(ctx, compressionFeatures())
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, p := range got.LevelProbabilities {
			sum += p
		}
		if got.Level < 0 || got.Level > 9 || len(got.LevelProbabilities) != 10 || math.Abs(sum-1) > 1e-3 ||
			math.Abs(got.LevelProbabilities[got.Level]-got.Probability) > 1e-6 || got.LinkID != "a-b" ||
			got.ModelVersion != versions[ModelCompressionSelector] {
			t.Errorf("choice %+v (probabilities sum %v)", got, sum)
		}
	})
	t.Run("DetectAnomalyBatch", func(t *testing.T) {
		flapping := NodeMetrics{NodeID: "n2", UptimePct: 71, FailureRatio: 0.2, PacketLossRatio: 0.08,
			RetransmitsCount: 900, ErrorBudgetBurnRate: 14, RTTMs: 380}
		got, err := c.DetectAnomalyBatch(ctx, []NodeMetrics{nodeMetrics(), flapping})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range got {
			if r.NodeID != []string{"n1", "n2"}[i] || r.AnomalyScore < 0 || r.AnomalyScore > 1 ||
				r.IsAnomaly != (r.AnomalyScore >= r.Threshold) || r.ModelVersion != versions[ModelReliabilityDetector] {
				t.Errorf("result %d: %+v", i, r)
			}
		}
	})
	t.Run("DetectHighLatencyBatch", func(t *testing.T) {
		spiking := latencies(20)
		for i := 14; i < 20; i++ {
			spiking[i] = 2500 + 400*float64(i-14)
		}
		got, err := c.DetectHighLatencyBatch(ctx, []LatencyWindow{{ClusterID: "c1", ConsensusLatenciesMs: latencies(20)}, {ClusterID: "c2", ConsensusLatenciesMs: spiking}})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range got {
			if r.ClusterID != []string{"c1", "c2"}[i] || r.ReconstructionError < 0 || !finite(r.ReconstructionError) ||
				r.IsHighLatency != (r.ReconstructionError > r.Threshold) || r.ModelVersion != versions[ModelConsensusLatency] {
				t.Errorf("result %d: %+v", i, r)
			}
		}
		if got[1].ReconstructionError <= got[0].ReconstructionError {
			t.Errorf("a spiking window reconstructs better (%v) than a steady one (%v)", got[1].ReconstructionError, got[0].ReconstructionError)
		}
	})
	t.Run("single-item forms", func(t *testing.T) {
		if p, err := c.PredictBandwidth(ctx, linkSamples(10)); err != nil || p.ModelVersion == "" {
			t.Errorf("PredictBandwidth: %+v, %v", p, err)
		}
		if r, err := c.DetectAnomaly(ctx, nodeMetrics()); err != nil || r.ModelVersion == "" {
			t.Errorf("DetectAnomaly: %+v, %v", r, err)
		}
		if r, err := c.DetectHighLatency(ctx, latencies(20)); err != nil || r.ModelVersion == "" {
			t.Errorf("DetectHighLatency: %+v, %v", r, err)
		}
	})
}

func TestLiveInvalidInputNamesTheField(t *testing.T) {
	c := liveClient(t)
	ctx := context.Background()
	cases := []struct {
		name      string
		call      func() error
		wantField string
	}{
		// Throughput is the feature every bandwidth version reads (the committed one reads nothing else).
		{"negative throughput in the last sample", func() error {
			s := linkSamples(10)
			s[9].ThroughputMbps = -5
			_, err := c.PredictBandwidth(ctx, s)
			return err
		}, "links[0].samples[9].throughput_mbps"},
		{"NaN throughput in the second window", func() error {
			s := linkSamples(10)
			s[3].ThroughputMbps = math.NaN()
			_, err := c.PredictBandwidthBatch(ctx, []LinkWindow{{Samples: linkSamples(10)}, {Samples: s}})
			return err
		}, "links[1].samples[3].throughput_mbps"},
		{"delta hit ratio given in percent", func() error {
			f := compressionFeatures()
			f.HDEDeltaHitRatio = 30
			_, err := c.SelectCompression(ctx, f)
			return err
		}, "items[0].hde_delta_hit_ratio"},
		{"NaN uptime in the second node", func() error {
			bad := nodeMetrics()
			bad.UptimePct = math.NaN()
			_, err := c.DetectAnomalyBatch(ctx, []NodeMetrics{nodeMetrics(), bad})
			return err
		}, "nodes[1].uptime_pct"},
		{"negative latency", func() error {
			l := latencies(20)
			l[4] = -1
			_, err := c.DetectHighLatency(ctx, l)
			return err
		}, "windows[0].consensus_latencies_ms[4]"},
		{"batch over the limit", func() error {
			nodes := make([]NodeMetrics, 5000)
			for i := range nodes {
				nodes[i] = nodeMetrics()
			}
			_, err := c.DetectAnomalyBatch(ctx, nodes)
			return err
		}, "nodes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var iie *InvalidInputError
			if !errors.Is(err, ErrInvalidInput) || !errors.As(err, &iie) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			if iie.Field != tc.wantField || iie.Reason == "" || iie.Local {
				t.Fatalf("field %q reason %q local %v; want field %q from the server", iie.Field, iie.Reason, iie.Local, tc.wantField)
			}
			// The field came from the server's BadRequest detail, and the message says the same for humans.
			st := status.Convert(err)
			br := badRequestOf(st)
			if br == nil || len(br.GetFieldViolations()) != 1 {
				t.Fatalf("status %q details %v: want one BadRequest field violation", st.Message(), st.Details())
			}
			if v := br.GetFieldViolations()[0]; v.GetField() != tc.wantField || v.GetDescription() != iie.Reason {
				t.Errorf("violation %q %q, want %q %q", v.GetField(), v.GetDescription(), tc.wantField, iie.Reason)
			}
			if want := tc.wantField + ": " + iie.Reason; st.Message() != want {
				t.Errorf("message %q, want %q", st.Message(), want)
			}
		})
	}
}

// A dead replica in the list must not fail calls: round robin only uses connected replicas.
func TestLiveDeadReplicaIsSkipped(t *testing.T) {
	srv := requireLive(t)
	c := liveClient(t, WithStaticAddresses("127.0.0.1:1")) // the live server plus a port nothing listens on
	for i := range 20 {
		if _, err := c.DetectAnomaly(context.Background(), nodeMetrics()); err != nil {
			t.Fatalf("call %d with replicas %s and a dead one: %v", i, srv.addr, err)
		}
	}
}

// The default 10 ms budget holds for a warm single-item call on the live server, and with WithFallback a
// node gets an answer on every call even when one is late.
func TestLiveDefaultTimeoutWithFallback(t *testing.T) {
	c := liveClient(t, WithFallback(), WithTimeout(DefaultTimeout)) // the default budget, not liveClient's 5 s
	model, late := 0, 0
	for range 50 {
		r, err := c.DetectAnomaly(context.Background(), nodeMetrics())
		if err != nil {
			t.Fatalf("with WithFallback a call must not fail: %v", err)
		}
		if r.IsFallback() {
			late++
		} else {
			model++
		}
	}
	t.Logf("50 calls under the 10 ms default: %d answered by the model, %d by the fallback", model, late)
	if model == 0 {
		t.Fatal("no call answered within 10 ms")
	}
}

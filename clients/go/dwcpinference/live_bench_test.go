// Client-side latency per RPC against the live Python server: reported, not gated.
//
//	go test ./dwcpinference -run '^$' -bench Live -benchtime 2000x

package dwcpinference

import (
	"context"
	"slices"
	"testing"
	"time"
)

// benchLive calls one RPC b.N times in sequence and reports p50/p99/max latency in microseconds as seen
// by the caller (encoding, the round trip over loopback and decoding included).
func benchLive(b *testing.B, call func(ctx context.Context, c *Client) error) {
	// A generous timeout: a slow call is a figure to report, not an error to abort on.
	c := liveClient(b, WithTimeout(time.Second))
	ctx := context.Background()
	for range 50 { // warm the connection and the server's sessions
		if err := call(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := call(ctx, c); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	at := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))].Microseconds()) }
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(at(1), "max-µs")
}

func BenchmarkLivePredictBandwidth(b *testing.B) {
	samples := linkSamples(BandwidthWindowSamples)
	benchLive(b, func(ctx context.Context, c *Client) error { _, err := c.PredictBandwidth(ctx, samples); return err })
}

func BenchmarkLiveSelectCompression(b *testing.B) {
	f := compressionFeatures()
	benchLive(b, func(ctx context.Context, c *Client) error { _, err := c.SelectCompression(ctx, f); return err })
}

func BenchmarkLiveDetectAnomaly(b *testing.B) {
	n := nodeMetrics()
	benchLive(b, func(ctx context.Context, c *Client) error { _, err := c.DetectAnomaly(ctx, n); return err })
}

func BenchmarkLiveDetectHighLatency(b *testing.B) {
	l := latencies(LatencyWindowSamples)
	benchLive(b, func(ctx context.Context, c *Client) error { _, err := c.DetectHighLatency(ctx, l); return err })
}

func BenchmarkLiveModelInfo(b *testing.B) {
	benchLive(b, func(ctx context.Context, c *Client) error { _, err := c.ModelInfo(ctx); return err })
}

// A batch of 64 links in one call, for comparison with 64 single calls.
func BenchmarkLivePredictBandwidthBatch64(b *testing.B) {
	windows := make([]LinkWindow, 64)
	for i := range windows {
		windows[i] = LinkWindow{Samples: linkSamples(BandwidthWindowSamples)}
	}
	benchLive(b, func(ctx context.Context, c *Client) error {
		_, err := c.PredictBandwidthBatch(ctx, windows)
		return err
	})
}

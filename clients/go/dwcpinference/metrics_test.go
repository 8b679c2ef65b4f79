// Metrics over an in-memory server: grpc-go's RPC metrics and the client's own instruments on a manual reader.

package dwcpinference

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// collected reads every metric the reader holds, by name.
func collected(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sumWhere adds up a counter's points whose attribute key has value want.
func sumWhere(m metricdata.Metrics, key, want string) int64 {
	var n int64
	if s, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, p := range s.DataPoints {
			if v, ok := p.Attributes.Value(attribute.Key(key)); ok && v.AsString() == want {
				n += p.Value
			}
		}
	}
	return n
}

func TestMetricsOfTheClient(t *testing.T) {
	cases := []struct {
		name   string
		before func(context.Context, int64) error
		opts   []Option
		check  func(t *testing.T, got map[string]metricdata.Metrics)
	}{
		{"call duration per method from grpc-go's plugin", nil, nil, func(t *testing.T, got map[string]metricdata.Metrics) {
			h, ok := got["grpc.client.call.duration"].Data.(metricdata.Histogram[float64])
			if !ok {
				t.Fatalf("no grpc.client.call.duration histogram in %v", keys(got))
			}
			var n uint64
			for _, p := range h.DataPoints {
				if v, _ := p.Attributes.Value("grpc.method"); v.AsString() == "dwcp.inference.v1.InferenceService/DetectAnomaly" {
					n += p.Count
				}
			}
			if n != 1 {
				t.Errorf("%d DetectAnomaly calls recorded, want 1", n)
			}
		}},
		{"fallbacks served", func(context.Context, int64) error { return status.Error(codes.Unavailable, "down") },
			[]Option{WithFallback()}, func(t *testing.T, got map[string]metricdata.Metrics) {
				if n := sumWhere(got[MetricFallbacks], "dwcp.rpc", rpcDetectAnomaly); n != 1 {
					t.Errorf("%s = %d for DetectAnomaly, want 1", MetricFallbacks, n)
				}
			}},
		{"retries", func(_ context.Context, call int64) error {
			if call == 1 {
				return status.Error(codes.Unavailable, "draining")
			}
			return nil
		}, []Option{WithRetries(2, 0)}, func(t *testing.T, got map[string]metricdata.Metrics) {
			if n := sumWhere(got[MetricRetries], "dwcp.rpc", rpcDetectAnomaly); n != 1 {
				t.Errorf("%s = %d for DetectAnomaly, want 1", MetricRetries, n)
			}
		}},
		{"no fallback, no retry: nothing counted", nil, []Option{WithFallback(), WithRetries(2, 0)},
			func(t *testing.T, got map[string]metricdata.Metrics) {
				if n := sumWhere(got[MetricFallbacks], "dwcp.rpc", rpcDetectAnomaly) + sumWhere(got[MetricRetries], "dwcp.rpc", rpcDetectAnomaly); n != 0 {
					t.Errorf("%d fallbacks and retries counted for a healthy call", n)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			f := &fakeServer{version: "v1", before: tc.before}
			c := newBufClient(t, f, append([]Option{WithTimeout(5 * time.Second), WithMeterProvider(mp)}, tc.opts...)...)
			if _, err := c.DetectAnomaly(context.Background(), nodeMetrics()); err != nil {
				t.Fatal(err)
			}
			tc.check(t, collected(t, reader))
		})
	}
}

func TestMetricsCoalescedBatchItems(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	g := newGate()
	c := g.client(t, WithTimeout(5*time.Second), WithMeterProvider(mp))
	call := keyedRPCs()[rpcSelectCompression]
	first := launch(context.Background(), c, call, "first")
	g.waitRPCs(t, 1)
	rest := launch(context.Background(), c, call, "a", "b", "c")
	waitFor(t, "callers queued", func() bool { return queued(c, rpcSelectCompression) == 3 })
	g.releaseAll()
	collect(t, first, 1)
	collect(t, rest, 3)
	h, ok := collected(t, reader)[MetricCoalescedBatchItems].Data.(metricdata.Histogram[int64])
	if !ok || len(h.DataPoints) != 1 {
		t.Fatalf("%s: %+v, want one series", MetricCoalescedBatchItems, h)
	}
	if p := h.DataPoints[0]; p.Count != 2 || p.Sum != 4 {
		t.Errorf("batches %d, items %d; want 2 batches of 1 and 3 items", p.Count, p.Sum)
	}
}

func TestWithMeterProviderNil(t *testing.T) {
	if _, err := New("127.0.0.1:1", WithInsecure(), WithMeterProvider(nil)); err == nil {
		t.Fatal("New accepted a nil meter provider")
	}
}

func keys(m map[string]metricdata.Metrics) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The node's side of WithMeterProvider: a meter provider with a manual reader, printed at the end.

package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// printMetrics writes every metric the reader collected: one line per series, with its count (histograms:
// count, mean and max) and attributes. A node would hand the provider to its exporter (OTLP, Prometheus).
func printMetrics(ctx context.Context, w io.Writer, reader *sdkmetric.ManualReader) error {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if strings.HasSuffix(m.Name, "_message_size") { // also collected; left out to keep the print short
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("  %-40s %s  %d", m.Name, attrs(p.Attributes), p.Value))
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					maxV, _ := p.Max.Value()
					lines = append(lines, fmt.Sprintf("  %-40s %s  count %d, mean %.1f, max %d %s", m.Name,
						attrs(p.Attributes), p.Count, float64(p.Sum)/float64(max(p.Count, 1)), maxV, m.Unit))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					maxV, _ := p.Max.Value()
					lines = append(lines, fmt.Sprintf("  %-40s %s  count %d, mean %.3g, max %.3g %s", m.Name,
						attrs(p.Attributes), p.Count, p.Sum/float64(max(p.Count, 1)), maxV, m.Unit))
				}
			}
		}
	}
	slices.Sort(lines)
	_, err := fmt.Fprintf(w, "\nMetrics collected (grpc-go's OpenTelemetry plugin and the client's own):\n%s\n",
		strings.Join(lines, "\n"))
	return err
}

// attrs renders the attributes that tell series apart: the method or RPC and the status.
func attrs(set attribute.Set) string {
	var parts []string
	for _, kv := range set.ToSlice() {
		switch kv.Key {
		case "grpc.method":
			parts = append(parts, strings.TrimPrefix(kv.Value.AsString(), "dwcp.inference.v1.InferenceService/"))
		case "grpc.status", "dwcp.rpc":
			parts = append(parts, kv.Value.AsString())
		}
	}
	return fmt.Sprintf("%-28s", strings.Join(parts, " "))
}

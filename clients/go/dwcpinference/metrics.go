// What a node can watch: grpc-go's OpenTelemetry stats plugin for the RPCs, and the client's own
// instruments (fallbacks served, retries, coalesced batch sizes) on the node's meter provider.

package dwcpinference

import (
	"context"
	"errors"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	grpcotel "google.golang.org/grpc/stats/opentelemetry"
)

// MeterName is the instrumentation scope of the client's own instruments.
const MeterName = "github.com/dwcp/dwcp-inference/clients/go/dwcpinference"

// The client's own instruments, beside grpc-go's grpc.client.* metrics.
const (
	// MetricFallbacks counts items answered by the fallback heuristics, per RPC.
	MetricFallbacks = "dwcp.client.fallbacks"
	// MetricRetries counts attempts repeated after UNAVAILABLE (WithRetries), per RPC.
	MetricRetries = "dwcp.client.retries"
	// MetricCoalescedBatchItems is the distribution of items per coalesced batch RPC, per RPC.
	MetricCoalescedBatchItems = "dwcp.client.coalesced_batch.items"
)

// batchItemBounds are the bucket bounds of MetricCoalescedBatchItems: powers of two up to the server's 1024.
var batchItemBounds = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// clientMetrics are the client's instruments; a nil *clientMetrics records nothing.
type clientMetrics struct {
	fallbacks  metric.Int64Counter
	retries    metric.Int64Counter
	batchItems metric.Int64Histogram
}

func newClientMetrics(mp metric.MeterProvider) (*clientMetrics, error) {
	meter := mp.Meter(MeterName)
	fallbacks, err1 := meter.Int64Counter(MetricFallbacks, metric.WithUnit("{item}"),
		metric.WithDescription("Items answered by the client's fallback heuristics instead of a model."))
	retries, err2 := meter.Int64Counter(MetricRetries, metric.WithUnit("{attempt}"),
		metric.WithDescription("Call attempts repeated after UNAVAILABLE."))
	batchItems, err3 := meter.Int64Histogram(MetricCoalescedBatchItems, metric.WithUnit("{item}"),
		metric.WithDescription("Items per batch RPC sent by coalescing single-item calls."),
		metric.WithExplicitBucketBoundaries(batchItemBounds...))
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	return &clientMetrics{fallbacks: fallbacks, retries: retries, batchItems: batchItems}, nil
}

// rpcAttr is the attribute naming the RPC: "PredictBandwidth", as grpc.method ends.
func rpcAttr(rpc string) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("dwcp.rpc", rpc))
}

func (m *clientMetrics) fellBack(ctx context.Context, rpc string, items int) {
	if m != nil {
		m.fallbacks.Add(ctx, int64(items), rpcAttr(rpc))
	}
}

func (m *clientMetrics) batchSent(ctx context.Context, rpc string, items int) {
	if m != nil {
		m.batchItems.Record(ctx, int64(items), rpcAttr(rpc))
	}
}

// countRetries wraps the retry interceptor so that every attempt after the first is counted.
func (m *clientMetrics) countRetries(retry grpc.UnaryClientInterceptor) grpc.UnaryClientInterceptor {
	if m == nil {
		return retry
	}
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		attempts := 0
		counted := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
			if attempts++; attempts > 1 {
				m.retries.Add(ctx, 1, rpcAttr(method[strings.LastIndexByte(method, '/')+1:]))
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		return retry(ctx, method, req, reply, cc, counted, opts...)
	}
}

// WithMeterProvider records the client's metrics on mp, the node's OpenTelemetry meter provider: grpc-go's
// stats plugin (google.golang.org/grpc/stats/opentelemetry) for every RPC (grpc.client.call.duration per
// grpc.method, attempts, message sizes; with coalescing a call is one batch RPC), plus the client's own
// MetricFallbacks, MetricRetries and MetricCoalescedBatchItems. With WithGRPCConn the RPC metrics belong to
// the given connection (dial it with grpcotel.DialOption); the client's own instruments are still recorded.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) error {
		if mp == nil {
			return errors.New("dwcpinference: WithMeterProvider: nil meter provider")
		}
		m, err := newClientMetrics(mp)
		if err != nil {
			return err
		}
		c.metrics, c.meterProvider = m, mp
		return nil
	}
}

// statsDialOption is grpc-go's OpenTelemetry stats plugin on mp.
func statsDialOption(mp metric.MeterProvider) grpc.DialOption {
	return grpcotel.DialOption(grpcotel.Options{MetricsOptions: grpcotel.MetricsOptions{MeterProvider: mp}})
}

// What a node can watch: grpc-go's OpenTelemetry stats plugin for the RPCs, and the client's own
// instruments (fallbacks served, retries, coalesced batch sizes) on the node's meter provider.

package dwcpinference

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
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

// attemptsKey carries a call's attempt counter from retryCounter.intercept to its stats handler.
type attemptsKey struct{}

// retryCounter counts a call's retries: its interceptor gives each call a counter, and its stats handler,
// which grpc-go runs for every attempt (the service config's retries included), increments it.
type retryCounter struct{ m *clientMetrics }

func (r retryCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	if n, ok := ctx.Value(attemptsKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
	return ctx
}

func (retryCounter) HandleRPC(context.Context, stats.RPCStats)                         {}
func (retryCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (retryCounter) HandleConn(context.Context, stats.ConnStats)                       {}

func (r retryCounter) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	attempts := new(atomic.Int64)
	err := invoker(context.WithValue(ctx, attemptsKey{}, attempts), method, req, reply, cc, opts...)
	if extra := attempts.Load() - 1; extra > 0 {
		r.m.retries.Add(ctx, extra, rpcAttr(method[strings.LastIndexByte(method, '/')+1:]))
	}
	return err
}

// retryDialOptions count every attempt after a call's first in MetricRetries; none when m is nil.
func (m *clientMetrics) retryDialOptions() []grpc.DialOption {
	if m == nil {
		return nil
	}
	r := retryCounter{m}
	return []grpc.DialOption{grpc.WithStatsHandler(r), grpc.WithChainUnaryInterceptor(r.intercept)}
}

// WithMeterProvider records the client's metrics on mp, the node's OpenTelemetry meter provider: grpc-go's
// stats plugin (google.golang.org/grpc/stats/opentelemetry) for every RPC (grpc.client.call.duration per
// grpc.method, attempts, message sizes; with coalescing a call is one batch RPC), plus the client's own
// MetricFallbacks, MetricRetries and MetricCoalescedBatchItems. With WithGRPCConn the RPC metrics and the
// retry count belong to the given connection (dial it with grpcotel.DialOption); fallbacks and batch sizes
// are still recorded.
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

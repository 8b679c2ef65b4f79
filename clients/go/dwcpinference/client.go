// The Client: its connections to the replicas and a method per model question.

package dwcpinference

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"

	inferencev1 "github.com/dwcp/dwcp-inference/clients/go/gen/dwcp/inference/v1"
)

// modelInfoMinTimeout is the timeout floor for ModelInfo, which is not on the data path.
const modelInfoMinTimeout = time.Second

// Client calls the dwcp-inference service. It is safe for concurrent use; create one per process and
// share it.
type Client struct {
	ch    channels
	owned []*grpc.ClientConn // the connections New made, which Close closes; none with WithGRPCConn
	cfg   config
	co    *coalescers // nil with WithoutCoalescing
}

// New creates a client for target without waiting for a connection (it starts connecting at once).
//
// target is a gRPC target: "host:port" or "dns:///host:port" (every address the name resolves to is a
// replica), or a comma-separated list "host1:port,host2:port" of replicas. Calls are balanced round-robin
// over the replicas that serve them: each RPC has its own channel, which watches that RPC's grpc.health.v1
// entry on every replica, so a replica missing a model or draining gets no calls of it. That is one
// connection per RPC and replica (five per replica). Transport security must be chosen explicitly:
// WithTLS, WithTransportCredentials or WithInsecure. With WithGRPCConn, target is empty and every call
// goes over the given connection.
func New(target string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.conn != nil {
		if err := cfg.ownsNothing(target); err != nil {
			return nil, err
		}
		c := &Client{ch: newChannels(), cfg: cfg}
		c.ch.useConn(cfg.conn)
		c.co = newCoalescers(c)
		return c, nil
	}
	creds, err := cfg.transportCredentials()
	if err != nil {
		return nil, err
	}
	target, resolverFor, err := replicaTarget(target, cfg.addresses)
	if err != nil {
		return nil, err
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if cfg.keepalive != nil {
		dial = append(dial, grpc.WithKeepaliveParams(*cfg.keepalive))
	}
	if cfg.meterProvider != nil {
		dial = append(dial, statsDialOption(cfg.meterProvider))
	}
	dial = append(dial, cfg.metrics.retryDialOptions()...)
	ch, owned, err := dialChannels(target, resolverFor, append(dial, cfg.dialOptions...), cfg.retries, cfg.backoff)
	if err != nil {
		return nil, err
	}
	c := &Client{ch: ch, owned: owned, cfg: cfg}
	c.co = newCoalescers(c)
	return c, nil
}

// Close releases the connections New made; calls in flight on them fail with ErrUnavailable or
// context.Canceled. A connection given with WithGRPCConn stays open: its owner closes it.
func (c *Client) Close() error {
	var errs []error
	for _, conn := range c.owned {
		errs = append(errs, conn.Close())
	}
	return errors.Join(errs...)
}

// WaitReady blocks until every model RPC has a replica that serves it (connected and reporting SERVING
// for that RPC), or ctx ends. Calls do not need it; it lets a program fail fast at start-up instead of on
// its first call. With WithGRPCConn it waits until the given connection is ready.
func (c *Client) WaitReady(ctx context.Context) error {
	var missing []string
	seen := map[*grpc.ClientConn]bool{}
	for _, ch := range c.ch.models() {
		if seen[ch.conn] {
			continue
		}
		seen[ch.conn] = true
		if s, ok := waitReady(ctx, ch.conn); !ok {
			missing = append(missing, fmt.Sprintf("%s (%s)", ch.rpc, s))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: no replica ready for %s: %w", ErrUnavailable, strings.Join(missing, ", "), ctx.Err())
	}
	return nil
}

// callContext bounds a call by the per-call timeout; the caller's deadline wins when it is earlier.
func callContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, timeout)
}

// canFallBack reports whether err is a failure the fallback heuristics may answer for.
func (c *Client) canFallBack(err error) bool {
	return c.cfg.fallback && (errors.Is(err, ErrDeadlineExceeded) || errors.Is(err, ErrUnavailable))
}

// invoke runs one generated stub method under the per-call timeout and maps its error against the
// caller's context, not the per-call one: a CANCELLED the server sent as the per-call timeout ran out is
// still the server's refusal (issue 17: 2-50 of 5,000 calls came back as context.Canceled, unanswered by
// the fallback, because the timed-out per-call context made them look cancelled by the caller).
func invoke[Req, Resp any](ctx context.Context, rpc string, timeout time.Duration,
	fn func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	callCtx, cancel := callContext(ctx, timeout)
	defer cancel()
	resp, err := fn(callCtx, req)
	return resp, mapError(ctx, rpc, err)
}

// batchCall is every batch RPC: build and check the request, call under the per-call timeout, answer with
// the fallback heuristic when allowed, check the answer has one result per item, convert it.
func batchCall[In, Req, Resp, Out any](ctx context.Context, c *Client, rpc string, items []In,
	build func([]In) (Req, error), fn func(context.Context, Req, ...grpc.CallOption) (Resp, error),
	convert func(Resp) []Out, fallback func(In) Out) ([]Out, error) {
	req, err := build(items)
	if err != nil {
		return nil, err
	}
	resp, err := invoke(ctx, rpc, c.cfg.timeout, fn, req)
	if err != nil {
		if c.canFallBack(err) {
			c.cfg.metrics.fellBack(ctx, rpc, len(items))
			return fallbackAll(items, fallback), nil
		}
		return nil, err
	}
	out := convert(resp)
	if err := checkCount(rpc, len(out), len(items)); err != nil {
		return nil, err
	}
	return out, nil
}

// first is the single-item form of a batch call's result.
func first[T any](out []T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return out[0], nil
}

// PredictBandwidth predicts a link's throughput over the next sample interval from its last
// BandwidthWindowSamples samples, oldest first.
func (c *Client) PredictBandwidth(ctx context.Context, samples []LinkSample) (BandwidthPrediction, error) {
	if c.co != nil {
		return c.co.bandwidth.call(ctx, c.cfg.timeout, LinkWindow{Samples: samples})
	}
	return first(c.PredictBandwidthBatch(ctx, []LinkWindow{{Samples: samples}}))
}

// PredictBandwidthBatch predicts several links in one call; results are in the order of windows.
func (c *Client) PredictBandwidthBatch(ctx context.Context, windows []LinkWindow) ([]BandwidthPrediction, error) {
	return batchCall(ctx, c, rpcPredictBandwidth, windows, bandwidthRequest, c.ch.bandwidth.stub.PredictBandwidth, bandwidthResults, FallbackBandwidth)
}

// SelectCompression picks the compression level (0-9) that moves a chunk fastest over one link.
func (c *Client) SelectCompression(ctx context.Context, features CompressionFeatures) (CompressionChoice, error) {
	if c.co != nil {
		return c.co.compression.call(ctx, c.cfg.timeout, features)
	}
	return first(c.SelectCompressionBatch(ctx, []CompressionFeatures{features}))
}

// SelectCompressionBatch picks levels for several links in one call; results are in request order.
func (c *Client) SelectCompressionBatch(ctx context.Context, items []CompressionFeatures) ([]CompressionChoice, error) {
	return batchCall(ctx, c, rpcSelectCompression, items, compressionRequest, c.ch.compression.stub.SelectCompression, compressionResults, FallbackCompression)
}

// DetectAnomaly scores one node's reliability metrics for anomaly.
func (c *Client) DetectAnomaly(ctx context.Context, metrics NodeMetrics) (AnomalyResult, error) {
	if c.co != nil {
		return c.co.anomaly.call(ctx, c.cfg.timeout, metrics)
	}
	return first(c.DetectAnomalyBatch(ctx, []NodeMetrics{metrics}))
}

// DetectAnomalyBatch scores several nodes in one call; results are in request order.
func (c *Client) DetectAnomalyBatch(ctx context.Context, nodes []NodeMetrics) ([]AnomalyResult, error) {
	return batchCall(ctx, c, rpcDetectAnomaly, nodes, anomalyRequest, c.ch.anomaly.stub.DetectAnomaly, anomalyResults, FallbackAnomaly)
}

// DetectHighLatency tells whether a cluster's last LatencyWindowSamples consensus latencies (ms, oldest
// first) look abnormally high.
func (c *Client) DetectHighLatency(ctx context.Context, latenciesMs []float64) (LatencyResult, error) {
	if c.co != nil {
		return c.co.latency.call(ctx, c.cfg.timeout, LatencyWindow{ConsensusLatenciesMs: latenciesMs})
	}
	return first(c.DetectHighLatencyBatch(ctx, []LatencyWindow{{ConsensusLatenciesMs: latenciesMs}}))
}

// DetectHighLatencyBatch checks several windows in one call; results are in request order.
func (c *Client) DetectHighLatencyBatch(ctx context.Context, windows []LatencyWindow) ([]LatencyResult, error) {
	return batchCall(ctx, c, rpcDetectHighLatency, windows, latencyRequest, c.ch.latency.stub.DetectHighLatency, latencyResults, FallbackLatency)
}

// ModelInfo describes every served model version: inputs with units and ranges, outputs, thresholds and
// training metrics. It is not on the data path, so its timeout is the per-call timeout but at least 1 s
// (the caller's context deadline still wins when earlier). It has no fallback.
func (c *Client) ModelInfo(ctx context.Context) ([]ModelInfo, error) {
	timeout := c.cfg.timeout
	if timeout > 0 {
		timeout = max(timeout, modelInfoMinTimeout)
	}
	resp, err := invoke(ctx, rpcGetModelInfo, timeout, c.ch.info.stub.GetModelInfo, &inferencev1.GetModelInfoRequest{})
	if err != nil {
		return nil, err
	}
	return modelInfos(resp), nil
}

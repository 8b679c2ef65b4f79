// The Client: one gRPC connection (to one or many replicas) and a method per model question.

package dwcpinference

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	inferencev1 "github.com/dwcp/dwcp-inference/clients/go/gen/dwcp/inference/v1"
)

// roundRobin makes every resolved address (DNS records or the static list) a subchannel and spreads calls
// over them one by one, instead of gRPC's default of pinning every call to the first address.
const roundRobin = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// modelInfoMinTimeout is the timeout floor for ModelInfo, which is not on the data path.
const modelInfoMinTimeout = time.Second

// Client calls the dwcp-inference service. It is safe for concurrent use; create one per process and
// share it.
type Client struct {
	conn *grpc.ClientConn
	stub inferencev1.InferenceServiceClient
	cfg  config
}

// New creates a client for target without waiting for a connection (it starts connecting at once).
//
// target is a gRPC target: "host:port" or "dns:///host:port" (every address the name resolves to is a
// replica), or a comma-separated list "host1:port,host2:port" of replicas. Calls are balanced round-robin
// over all replicas. Transport security must be chosen explicitly: WithTLS, WithTransportCredentials or
// WithInsecure.
func New(target string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	creds, err := cfg.transportCredentials()
	if err != nil {
		return nil, err
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(roundRobin),
	}
	if cfg.keepalive != nil {
		dial = append(dial, grpc.WithKeepaliveParams(*cfg.keepalive))
	}
	if cfg.retries > 0 {
		dial = append(dial, grpc.WithChainUnaryInterceptor(retryInterceptor(cfg.retries, cfg.backoff)))
	}

	addrs := cfg.addresses
	if strings.Contains(target, ",") || len(addrs) > 0 {
		for _, a := range strings.Split(target, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		for _, a := range addrs {
			if strings.Contains(a, "://") {
				return nil, fmt.Errorf("dwcpinference: %q in a replica list: list plain host:port addresses, or give one dns:/// target", a)
			}
		}
	}
	if len(addrs) > 0 {
		// A resolver private to this client (not registered globally) that reports the fixed list.
		r := manual.NewBuilderWithScheme("dwcpinference-static")
		endpoints := make([]resolver.Endpoint, len(addrs))
		for i, a := range addrs {
			endpoints[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}}
		}
		r.InitialState(resolver.State{Endpoints: endpoints})
		dial = append(dial, grpc.WithResolvers(r))
		target = r.Scheme() + ":///replicas"
	} else if target == "" {
		return nil, errors.New("dwcpinference: empty target and no WithStaticAddresses")
	}

	conn, err := grpc.NewClient(target, append(dial, cfg.dialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("dwcpinference: %w", err)
	}
	conn.Connect()
	return &Client{conn: conn, stub: inferencev1.NewInferenceServiceClient(conn), cfg: cfg}, nil
}

// Close releases the connections. Calls in flight fail with ErrUnavailable or context.Canceled.
func (c *Client) Close() error { return c.conn.Close() }

// WaitReady blocks until at least one replica is connected or ctx ends. Calls do not need it; it lets a
// program fail fast at start-up instead of on its first call.
func (c *Client) WaitReady(ctx context.Context) error {
	for {
		s := c.conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if s == connectivity.Idle {
			c.conn.Connect()
		}
		if !c.conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("%w: no replica ready (last state %s): %w", ErrUnavailable, s, ctx.Err())
		}
	}
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

// invoke runs one generated stub method under the per-call timeout and maps its error.
func invoke[Req, Resp any](ctx context.Context, rpc string, timeout time.Duration,
	fn func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	ctx, cancel := callContext(ctx, timeout)
	defer cancel()
	resp, err := fn(ctx, req)
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
	return first(c.PredictBandwidthBatch(ctx, []LinkWindow{{Samples: samples}}))
}

// PredictBandwidthBatch predicts several links in one call; results are in the order of windows.
func (c *Client) PredictBandwidthBatch(ctx context.Context, windows []LinkWindow) ([]BandwidthPrediction, error) {
	return batchCall(ctx, c, "PredictBandwidth", windows, bandwidthRequest, c.stub.PredictBandwidth, bandwidthResults, FallbackBandwidth)
}

// SelectCompression picks the compression level (0-9) that moves a chunk fastest over one link.
func (c *Client) SelectCompression(ctx context.Context, features CompressionFeatures) (CompressionChoice, error) {
	return first(c.SelectCompressionBatch(ctx, []CompressionFeatures{features}))
}

// SelectCompressionBatch picks levels for several links in one call; results are in request order.
func (c *Client) SelectCompressionBatch(ctx context.Context, items []CompressionFeatures) ([]CompressionChoice, error) {
	return batchCall(ctx, c, "SelectCompression", items, compressionRequest, c.stub.SelectCompression, compressionResults, FallbackCompression)
}

// DetectAnomaly scores one node's reliability metrics for anomaly.
func (c *Client) DetectAnomaly(ctx context.Context, metrics NodeMetrics) (AnomalyResult, error) {
	return first(c.DetectAnomalyBatch(ctx, []NodeMetrics{metrics}))
}

// DetectAnomalyBatch scores several nodes in one call; results are in request order.
func (c *Client) DetectAnomalyBatch(ctx context.Context, nodes []NodeMetrics) ([]AnomalyResult, error) {
	return batchCall(ctx, c, "DetectAnomaly", nodes, anomalyRequest, c.stub.DetectAnomaly, anomalyResults, FallbackAnomaly)
}

// DetectHighLatency tells whether a cluster's last LatencyWindowSamples consensus latencies (ms, oldest
// first) look abnormally high.
func (c *Client) DetectHighLatency(ctx context.Context, latenciesMs []float64) (LatencyResult, error) {
	return first(c.DetectHighLatencyBatch(ctx, []LatencyWindow{{ConsensusLatenciesMs: latenciesMs}}))
}

// DetectHighLatencyBatch checks several windows in one call; results are in request order.
func (c *Client) DetectHighLatencyBatch(ctx context.Context, windows []LatencyWindow) ([]LatencyResult, error) {
	return batchCall(ctx, c, "DetectHighLatency", windows, latencyRequest, c.stub.DetectHighLatency, latencyResults, FallbackLatency)
}

// ModelInfo describes every served model version: inputs with units and ranges, outputs, thresholds and
// training metrics. It is not on the data path, so its timeout is the per-call timeout but at least 1 s
// (the caller's context deadline still wins when earlier). It has no fallback.
func (c *Client) ModelInfo(ctx context.Context) ([]ModelInfo, error) {
	timeout := c.cfg.timeout
	if timeout > 0 {
		timeout = max(timeout, modelInfoMinTimeout)
	}
	resp, err := invoke(ctx, "GetModelInfo", timeout, c.stub.GetModelInfo, &inferencev1.GetModelInfoRequest{})
	if err != nil {
		return nil, err
	}
	return modelInfos(resp), nil
}

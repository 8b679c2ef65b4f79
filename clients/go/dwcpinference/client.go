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
func (c *Client) callContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
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
func invoke[Req, Resp any](ctx context.Context, c *Client, rpc string, timeout time.Duration,
	fn func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	ctx, cancel := c.callContext(ctx, timeout)
	defer cancel()
	resp, err := fn(ctx, req)
	return resp, mapError(ctx, rpc, err)
}

// PredictBandwidth predicts a link's throughput over the next sample interval from its last
// BandwidthWindowSamples samples, oldest first.
func (c *Client) PredictBandwidth(ctx context.Context, samples []LinkSample) (BandwidthPrediction, error) {
	out, err := c.PredictBandwidthBatch(ctx, []LinkWindow{{Samples: samples}})
	if err != nil {
		return BandwidthPrediction{}, err
	}
	return out[0], nil
}

// PredictBandwidthBatch predicts several links in one call; results are in the order of windows.
func (c *Client) PredictBandwidthBatch(ctx context.Context, windows []LinkWindow) ([]BandwidthPrediction, error) {
	req, err := bandwidthRequest(windows)
	if err != nil {
		return nil, err
	}
	resp, err := invoke(ctx, c, "PredictBandwidth", c.cfg.timeout, c.stub.PredictBandwidth, req)
	if err != nil {
		if c.canFallBack(err) {
			return fallbackAll(windows, FallbackBandwidth), nil
		}
		return nil, err
	}
	if err := checkCount("PredictBandwidth", len(resp.GetPredictions()), len(windows)); err != nil {
		return nil, err
	}
	return bandwidthResults(resp), nil
}

// SelectCompression picks the compression level (0-9) that moves a chunk fastest over one link.
func (c *Client) SelectCompression(ctx context.Context, features CompressionFeatures) (CompressionChoice, error) {
	out, err := c.SelectCompressionBatch(ctx, []CompressionFeatures{features})
	if err != nil {
		return CompressionChoice{}, err
	}
	return out[0], nil
}

// SelectCompressionBatch picks levels for several links in one call; results are in request order.
func (c *Client) SelectCompressionBatch(ctx context.Context, items []CompressionFeatures) ([]CompressionChoice, error) {
	req, err := compressionRequest(items)
	if err != nil {
		return nil, err
	}
	resp, err := invoke(ctx, c, "SelectCompression", c.cfg.timeout, c.stub.SelectCompression, req)
	if err != nil {
		if c.canFallBack(err) {
			return fallbackAll(items, FallbackCompression), nil
		}
		return nil, err
	}
	if err := checkCount("SelectCompression", len(resp.GetChoices()), len(items)); err != nil {
		return nil, err
	}
	return compressionResults(resp), nil
}

// DetectAnomaly scores one node's reliability metrics for anomaly.
func (c *Client) DetectAnomaly(ctx context.Context, metrics NodeMetrics) (AnomalyResult, error) {
	out, err := c.DetectAnomalyBatch(ctx, []NodeMetrics{metrics})
	if err != nil {
		return AnomalyResult{}, err
	}
	return out[0], nil
}

// DetectAnomalyBatch scores several nodes in one call; results are in request order.
func (c *Client) DetectAnomalyBatch(ctx context.Context, nodes []NodeMetrics) ([]AnomalyResult, error) {
	req, err := anomalyRequest(nodes)
	if err != nil {
		return nil, err
	}
	resp, err := invoke(ctx, c, "DetectAnomaly", c.cfg.timeout, c.stub.DetectAnomaly, req)
	if err != nil {
		if c.canFallBack(err) {
			return fallbackAll(nodes, FallbackAnomaly), nil
		}
		return nil, err
	}
	if err := checkCount("DetectAnomaly", len(resp.GetResults()), len(nodes)); err != nil {
		return nil, err
	}
	return anomalyResults(resp), nil
}

// DetectHighLatency tells whether a cluster's last LatencyWindowSamples consensus latencies (ms, oldest
// first) look abnormally high.
func (c *Client) DetectHighLatency(ctx context.Context, latenciesMs []float64) (LatencyResult, error) {
	out, err := c.DetectHighLatencyBatch(ctx, []LatencyWindow{{ConsensusLatenciesMs: latenciesMs}})
	if err != nil {
		return LatencyResult{}, err
	}
	return out[0], nil
}

// DetectHighLatencyBatch checks several windows in one call; results are in request order.
func (c *Client) DetectHighLatencyBatch(ctx context.Context, windows []LatencyWindow) ([]LatencyResult, error) {
	req, err := latencyRequest(windows)
	if err != nil {
		return nil, err
	}
	resp, err := invoke(ctx, c, "DetectHighLatency", c.cfg.timeout, c.stub.DetectHighLatency, req)
	if err != nil {
		if c.canFallBack(err) {
			return fallbackAll(windows, FallbackLatency), nil
		}
		return nil, err
	}
	if err := checkCount("DetectHighLatency", len(resp.GetResults()), len(windows)); err != nil {
		return nil, err
	}
	return latencyResults(resp), nil
}

// ModelInfo describes every served model version: inputs with units and ranges, outputs, thresholds and
// training metrics. It is not on the data path, so its timeout is the per-call timeout but at least 1 s
// (the caller's context deadline still wins when earlier). It has no fallback.
func (c *Client) ModelInfo(ctx context.Context) ([]ModelInfo, error) {
	timeout := c.cfg.timeout
	if timeout > 0 {
		timeout = max(timeout, modelInfoMinTimeout)
	}
	resp, err := invoke(ctx, c, "GetModelInfo", timeout, c.stub.GetModelInfo, &inferencev1.GetModelInfoRequest{})
	if err != nil {
		return nil, err
	}
	return modelInfos(resp), nil
}

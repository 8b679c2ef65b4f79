// Functional options for New: timeout, transport security, keepalive, retries, replicas, fallback, a given connection.

package dwcpinference

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// DefaultTimeout is the per-call timeout when WithTimeout is not given: the service's p99 latency budget.
const DefaultTimeout = 10 * time.Millisecond

// Option configures a Client.
type Option func(*config) error

type config struct {
	timeout     time.Duration
	creds       credentials.TransportCredentials
	insecure    bool
	keepalive   *keepalive.ClientParameters
	retries     int
	backoff     time.Duration
	addresses   []string
	fallback    bool
	dialOptions []grpc.DialOption
	conn        *grpc.ClientConn // WithGRPCConn: use it, never close it
	// WithCoalescing: items per coalesced batch (0: coalescing off) and batches in flight per RPC.
	coalesceItems, coalesceBatches int
	metrics                        *clientMetrics       // WithMeterProvider: the client's own instruments
	meterProvider                  metric.MeterProvider // WithMeterProvider: for grpc-go's stats plugin
}

func defaultConfig() config {
	return config{timeout: DefaultTimeout, coalesceItems: DefaultCoalesceMaxItems, coalesceBatches: DefaultCoalesceMaxBatches}
}

// WithTimeout sets the per-call timeout (default DefaultTimeout, 10 ms). A call ends at this timeout or at
// the caller's context deadline, whichever is earlier; retries happen inside it. Zero disables the
// client's timeout, leaving only the caller's context deadline.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return errors.New("dwcpinference: WithTimeout: negative timeout")
		}
		c.timeout = d
		return nil
	}
}

// WithTLS connects over TLS with the given configuration (nil: system roots, default settings). Set
// Certificates in cfg for mutual TLS.
func WithTLS(cfg *tls.Config) Option {
	return WithTransportCredentials(credentials.NewTLS(cfg))
}

// WithTransportCredentials connects with the given gRPC transport credentials (TLS, mTLS, ALTS, ...).
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(c *config) error {
		if creds == nil {
			return errors.New("dwcpinference: WithTransportCredentials: nil credentials")
		}
		c.creds = creds
		return nil
	}
}

// WithInsecure connects in plaintext. Meant for loopback development and tests; the client has no
// implicit default, so New fails unless one of WithInsecure, WithTLS or WithTransportCredentials is given.
func WithInsecure() Option {
	return func(c *config) error {
		c.insecure = true
		return nil
	}
}

// MinKeepaliveInterval is the shortest interval WithKeepalive accepts. It is gRPC-Go's own floor, and
// twice the 5 s the dwcp-inference server permits between pings (docs/serving.md), so that pings delayed
// or bunched by the network are never counted against the client.
const MinKeepaliveInterval = 10 * time.Second

// WithKeepalive pings a connection every interval when it has been quiet, idle or not, and drops it when a
// ping is not answered within timeout, so a dead replica is noticed before a call needs it. interval must
// be at least MinKeepaliveInterval: a gRPC server closes a connection that pings more often than its
// policy permits (GOAWAY "too_many_pings"). The dwcp-inference server permits it; another server in
// between (a proxy) must permit it too.
func WithKeepalive(interval, timeout time.Duration) Option {
	return func(c *config) error {
		if interval < MinKeepaliveInterval || timeout <= 0 {
			return fmt.Errorf("dwcpinference: WithKeepalive: interval %v must be at least %v and timeout %v positive",
				interval, MinKeepaliveInterval, timeout)
		}
		c.keepalive = &keepalive.ClientParameters{Time: interval, Timeout: timeout, PermitWithoutStream: true}
		return nil
	}
}

// WithRetries retries a call that failed with UNAVAILABLE up to n more times, waiting backoff before the
// first retry and doubling it (with +-20 % jitter, capped at 1 s) before each next one. Only UNAVAILABLE is
// retried: never INVALID_ARGUMENT, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED. grpc-go does the retrying, from
// a retryPolicy in each channel's service config, with retryThrottling: once a channel's recent calls have
// mostly failed, failed calls are returned without retrying, so retries cannot become a storm (retry.go).
// Retries stay inside the call's deadline: a deadline reached while waiting to retry ends the call with
// ErrDeadlineExceeded. With WithGRPCConn, retries are the connection's own service config. Default: none.
func WithRetries(n int, backoff time.Duration) Option {
	return func(c *config) error {
		if n < 0 || backoff < 0 {
			return errors.New("dwcpinference: WithRetries: negative count or backoff")
		}
		c.retries, c.backoff = n, backoff
		return nil
	}
}

// WithStaticAddresses spreads calls over a fixed list of replicas ("host:port" each), round-robin per call.
// The target given to New is added to the list when it is not empty. For replicas behind DNS, pass a
// "dns:///host:port" target to New instead: every address the name resolves to is balanced the same way.
func WithStaticAddresses(addrs ...string) Option {
	return func(c *config) error {
		for _, a := range addrs {
			if a == "" {
				return errors.New("dwcpinference: WithStaticAddresses: empty address")
			}
		}
		c.addresses = append(c.addresses, addrs...)
		return nil
	}
}

// WithFallback answers with a documented heuristic (see the Fallback* functions) when the service cannot
// answer: the call ended with ErrDeadlineExceeded or ErrUnavailable (including ErrOverloaded). Never for
// ErrInvalidInput or a canceled context. Results from the heuristic have ModelVersion
// FallbackModelVersion and IsFallback() true. Off by default.
func WithFallback() Option {
	return func(c *config) error {
		c.fallback = true
		return nil
	}
}

// WithCoalescing bounds coalescing, which is on by default: concurrent single-item calls of one RPC
// (PredictBandwidth, SelectCompression, DetectAnomaly, DetectHighLatency) leave as one batch RPC of at most
// maxItems items, with at most maxBatches such batches of the RPC in flight. A call made while nothing of
// its RPC is in flight is sent at once; while a batch is in flight, the calls that arrive wait for it and
// leave together. Each caller keeps its own deadline, cancellation, fallback and input errors. maxItems
// must not pass the server's max_batch_items (ModelInfo: MaxBatchItems). Default DefaultCoalesceMaxItems,
// DefaultCoalesceMaxBatches. The *Batch methods are sent as they are.
func WithCoalescing(maxItems, maxBatches int) Option {
	return func(c *config) error {
		if maxItems < 1 || maxBatches < 1 {
			return errors.New("dwcpinference: WithCoalescing: maxItems and maxBatches must be at least 1")
		}
		c.coalesceItems, c.coalesceBatches = maxItems, maxBatches
		return nil
	}
}

// WithoutCoalescing sends every single-item call as its own RPC.
func WithoutCoalescing() Option {
	return func(c *config) error {
		c.coalesceItems = 0
		return nil
	}
}

// WithDialOptions passes extra grpc.DialOptions to grpc.NewClient (interceptors, a custom dialer, stats
// handlers, ...). They are applied after the client's own options.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) error {
		c.dialOptions = append(c.dialOptions, opts...)
		return nil
	}
}

// WithGRPCConn sends every call over conn, a connection the program already has, instead of connecting
// itself. Close leaves conn open: its owner closes it. New's target must be empty, and what belongs to the
// connection is set where it was made: transport security, keepalive, replicas, balancing and health
// checking and retries (its service config), dial options. WithTimeout and WithFallback apply.
func WithGRPCConn(conn *grpc.ClientConn) Option {
	return func(c *config) error {
		if conn == nil {
			return errors.New("dwcpinference: WithGRPCConn: nil connection")
		}
		c.conn = conn
		return nil
	}
}

// ownsNothing checks that nothing was asked of a connection the client did not make.
func (c *config) ownsNothing(target string) error {
	var set []string
	for _, o := range []struct {
		name string
		set  bool
	}{
		{"a target", target != ""},
		{"WithStaticAddresses", len(c.addresses) > 0},
		{"WithInsecure", c.insecure},
		{"WithTLS/WithTransportCredentials", c.creds != nil},
		{"WithKeepalive", c.keepalive != nil},
		{"WithDialOptions", len(c.dialOptions) > 0},
		{"WithRetries (a retryPolicy in the connection's service config)", c.retries > 0},
	} {
		if o.set {
			set = append(set, o.name)
		}
	}
	if len(set) > 0 {
		return fmt.Errorf("dwcpinference: WithGRPCConn: %s belong to the given connection; set them where it is made",
			strings.Join(set, ", "))
	}
	return nil
}

// transportCredentials returns the single transport security choice, or an error when there is none or two.
func (c *config) transportCredentials() (credentials.TransportCredentials, error) {
	switch {
	case c.insecure && c.creds != nil:
		return nil, errors.New("dwcpinference: WithInsecure conflicts with WithTLS/WithTransportCredentials")
	case c.insecure:
		return insecure.NewCredentials(), nil
	case c.creds != nil:
		return c.creds, nil
	}
	return nil, errors.New("dwcpinference: choose transport security: WithTLS, WithTransportCredentials or WithInsecure")
}

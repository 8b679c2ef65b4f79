// Coalescing over an in-memory server: batching, bounds, and each caller's own deadline, cancellation,
// input errors and fallback.

package dwcpinference

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	inferencev1 "github.com/dwcp/dwcp-inference/clients/go/gen/dwcp/inference/v1"
)

// gate is a fake server whose RPCs wait until released: the first RPC on its own gate, every later one on
// a second. It records each RPC's items and the time left to its deadline, and fails an RPC with fail's
// error when fail gives one.
type gate struct {
	*fakeServer
	first, later chan struct{} // closed: RPCs pass
	fail         func(req any) error

	mu        sync.Mutex
	sizes     []int           // items per RPC, in arrival order
	remaining []time.Duration // time left per RPC as it arrived; 0: no deadline
	active    atomic.Int32
	maxSeen   atomic.Int32 // most RPCs inside the server at once
}

func newGate() *gate {
	return &gate{fakeServer: &fakeServer{version: "v1"}, first: make(chan struct{}), later: make(chan struct{})}
}

// releaseFirst lets the first RPC through; releaseAll every RPC.
func (g *gate) releaseFirst() { close(g.first) }
func (g *gate) releaseAll() {
	for _, ch := range []chan struct{}{g.first, g.later} {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

func (g *gate) hold(ctx context.Context, req any) error {
	var left time.Duration
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	g.mu.Lock()
	wait := g.later
	if len(g.sizes) == 0 {
		wait = g.first
	}
	g.sizes = append(g.sizes, requestItems(req))
	g.remaining = append(g.remaining, left)
	g.mu.Unlock()
	n := g.active.Add(1)
	defer g.active.Add(-1)
	for m := g.maxSeen.Load(); n > m && !g.maxSeen.CompareAndSwap(m, n); m = g.maxSeen.Load() {
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	if g.fail != nil {
		return g.fail(req)
	}
	return nil
}

func (g *gate) PredictBandwidth(ctx context.Context, req *inferencev1.PredictBandwidthRequest) (*inferencev1.PredictBandwidthResponse, error) {
	if err := g.hold(ctx, req); err != nil {
		return nil, err
	}
	return g.fakeServer.PredictBandwidth(ctx, req)
}

func (g *gate) SelectCompression(ctx context.Context, req *inferencev1.SelectCompressionRequest) (*inferencev1.SelectCompressionResponse, error) {
	if err := g.hold(ctx, req); err != nil {
		return nil, err
	}
	return g.fakeServer.SelectCompression(ctx, req)
}

func (g *gate) DetectAnomaly(ctx context.Context, req *inferencev1.DetectAnomalyRequest) (*inferencev1.DetectAnomalyResponse, error) {
	if err := g.hold(ctx, req); err != nil {
		return nil, err
	}
	return g.fakeServer.DetectAnomaly(ctx, req)
}

func (g *gate) DetectHighLatency(ctx context.Context, req *inferencev1.DetectHighLatencyRequest) (*inferencev1.DetectHighLatencyResponse, error) {
	if err := g.hold(ctx, req); err != nil {
		return nil, err
	}
	return g.fakeServer.DetectHighLatency(ctx, req)
}

// client serves g over bufconn and returns a client for it.
func (g *gate) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	inferencev1.RegisterInferenceServiceServer(srv, g)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	dialer := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
	opts = append([]Option{WithInsecure(), WithDialOptions(grpc.WithContextDialer(dialer))}, opts...)
	c, err := New("passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		g.releaseAll()
		_ = c.Close()
	})
	return c
}

func (g *gate) batchSizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

func (g *gate) deadlines() []time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]time.Duration(nil), g.remaining...)
}

// waitRPCs blocks until the server has seen n RPCs.
func (g *gate) waitRPCs(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d RPCs at the server", n), func() bool { return len(g.batchSizes()) >= n })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func requestItems(req any) int {
	switch r := req.(type) {
	case *inferencev1.PredictBandwidthRequest:
		return len(r.GetLinks())
	case *inferencev1.SelectCompressionRequest:
		return len(r.GetItems())
	case *inferencev1.DetectAnomalyRequest:
		return len(r.GetNodes())
	case *inferencev1.DetectHighLatencyRequest:
		return len(r.GetWindows())
	}
	return 0
}

// queued is how many callers wait in rpc's coalescer.
func queued(c *Client, rpc string) int {
	lens := map[string]func() int{
		rpcPredictBandwidth:  func() int { return lockedLen(&c.co.bandwidth.mu, func() int { return len(c.co.bandwidth.queue) }) },
		rpcSelectCompression: func() int { return lockedLen(&c.co.compression.mu, func() int { return len(c.co.compression.queue) }) },
		rpcDetectAnomaly:     func() int { return lockedLen(&c.co.anomaly.mu, func() int { return len(c.co.anomaly.queue) }) },
		rpcDetectHighLatency: func() int { return lockedLen(&c.co.latency.mu, func() int { return len(c.co.latency.queue) }) },
	}
	return lens[rpc]()
}

func lockedLen(mu *sync.Mutex, n func() int) int {
	mu.Lock()
	defer mu.Unlock()
	return n()
}

// keyedCall is one single-item call of an RPC whose answer carries back the key it was asked with.
type keyedCall func(ctx context.Context, c *Client, key string) (gotKey, version string, err error)

// keyedRPCs are the four single-item calls, keyed by link, node or cluster id.
func keyedRPCs() map[string]keyedCall {
	return map[string]keyedCall{
		rpcPredictBandwidth: func(ctx context.Context, c *Client, key string) (string, string, error) {
			// The single-item method takes no link id, so it is called as it calls itself, with one.
			w := LinkWindow{LinkID: key, Samples: linkSamples(BandwidthWindowSamples)}
			if c.co == nil {
				p, err := first(c.PredictBandwidthBatch(ctx, []LinkWindow{w}))
				return p.LinkID, p.ModelVersion, err
			}
			p, err := c.co.bandwidth.call(ctx, c.cfg.timeout, w)
			return p.LinkID, p.ModelVersion, err
		},
		rpcSelectCompression: func(ctx context.Context, c *Client, key string) (string, string, error) {
			f := compressionFeatures()
			f.LinkID = key
			r, err := c.SelectCompression(ctx, f)
			return r.LinkID, r.ModelVersion, err
		},
		rpcDetectAnomaly: func(ctx context.Context, c *Client, key string) (string, string, error) {
			n := nodeMetrics()
			n.NodeID = key
			r, err := c.DetectAnomaly(ctx, n)
			return r.NodeID, r.ModelVersion, err
		},
		rpcDetectHighLatency: func(ctx context.Context, c *Client, key string) (string, string, error) {
			w := LatencyWindow{ClusterID: key, ConsensusLatenciesMs: latencies(LatencyWindowSamples)}
			if c.co == nil {
				r, err := first(c.DetectHighLatencyBatch(ctx, []LatencyWindow{w}))
				return r.ClusterID, r.ModelVersion, err
			}
			r, err := c.co.latency.call(ctx, c.cfg.timeout, w)
			return r.ClusterID, r.ModelVersion, err
		},
	}
}

type answer struct {
	key, gotKey, version string
	err                  error
}

// launch starts one call per key in its own goroutine; the answers arrive on the returned channel.
func launch(ctx context.Context, c *Client, call keyedCall, keys ...string) <-chan answer {
	out := make(chan answer, len(keys))
	for _, k := range keys {
		go func() {
			got, version, err := call(ctx, c, k)
			out <- answer{k, got, version, err}
		}()
	}
	return out
}

func collect(t *testing.T, ch <-chan answer, n int) map[string]answer {
	t.Helper()
	got := map[string]answer{}
	for range n {
		select {
		case a := <-ch:
			got[a.key] = a
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d callers answered", len(got), n)
		}
	}
	return got
}

func TestCoalescingBatchesArrivalsWhileInFlight(t *testing.T) {
	cases := []struct {
		name        string
		opts        []Option
		queued      int   // callers that arrive while the first RPC is held
		wantBatches []int // items per RPC the server sees after the first, lone call
	}{
		{"one batch of every arrival", nil, 5, []int{5}},
		{"bounded items per batch", []Option{WithCoalescing(2, 1)}, 5, []int{2, 2, 1}},
		{"without coalescing", []Option{WithoutCoalescing()}, 3, []int{1, 1, 1}},
	}
	for _, tc := range cases {
		for rpc, call := range keyedRPCs() {
			t.Run(tc.name+"/"+rpc, func(t *testing.T) {
				g := newGate()
				c := g.client(t, append([]Option{WithTimeout(5 * time.Second)}, tc.opts...)...)
				ctx := context.Background()
				first := launch(ctx, c, call, "first")
				g.waitRPCs(t, 1) // the lone call left at once, without waiting for company
				keys := make([]string, tc.queued)
				for i := range keys {
					keys[i] = fmt.Sprintf("k%d", i)
				}
				rest := launch(ctx, c, call, keys...)
				if c.co != nil {
					waitFor(t, "callers queued", func() bool { return queued(c, rpc) == tc.queued })
				} else {
					g.waitRPCs(t, 1+tc.queued)
				}
				g.releaseAll()
				answers := collect(t, first, 1)
				for k, a := range collect(t, rest, tc.queued) {
					answers[k] = a
				}
				for k, a := range answers {
					if a.err != nil || a.gotKey != k || a.version != "v1" {
						t.Errorf("caller %s: got key %q version %q err %v", k, a.gotKey, a.version, a.err)
					}
				}
				sizes := g.batchSizes()
				if sizes[0] != 1 || fmt.Sprint(sizes[1:]) != fmt.Sprint(tc.wantBatches) {
					t.Errorf("items per RPC %v, want [1] then %v", sizes, tc.wantBatches)
				}
			})
		}
	}
}

func TestCoalescingBoundsBatchesInFlight(t *testing.T) {
	cases := []struct {
		name       string
		maxBatches int
		callers    int
	}{
		{"one batch in flight", 1, 9},
		{"two batches in flight", 2, 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			c := g.client(t, WithTimeout(5*time.Second), WithCoalescing(2, tc.maxBatches))
			call := keyedRPCs()[rpcDetectAnomaly]
			first := launch(context.Background(), c, call, "first")
			g.waitRPCs(t, 1)
			keys := make([]string, tc.callers)
			for i := range keys {
				keys[i] = fmt.Sprintf("k%d", i)
			}
			rest := launch(context.Background(), c, call, keys...)
			// Full batches leave while fewer than maxBatches are in flight; the rest wait in the queue.
			g.waitRPCs(t, tc.maxBatches)
			waitFor(t, "the rest queued", func() bool { return queued(c, rpcDetectAnomaly) == tc.callers-2*(tc.maxBatches-1) })
			g.releaseAll()
			collect(t, first, 1)
			for k, a := range collect(t, rest, tc.callers) {
				if a.err != nil || a.gotKey != k {
					t.Errorf("caller %s: %+v", k, a)
				}
			}
			if got := int(g.maxSeen.Load()); got > tc.maxBatches {
				t.Errorf("%d RPCs in flight at once, want at most %d", got, tc.maxBatches)
			}
		})
	}
}

func TestCoalescingCancelledCallerLeavesOthers(t *testing.T) {
	cases := []struct {
		name          string
		cancelWhile   string // "queued": before its batch leaves; "sent": while its batch is at the server
		wantNextItems int    // items of the batch after the lone first call
	}{
		{"cancelled while queued", "queued", 2},
		{"cancelled while its batch is in flight", "sent", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			c := g.client(t, WithTimeout(5*time.Second), WithFallback())
			call := keyedRPCs()[rpcSelectCompression]
			first := launch(context.Background(), c, call, "first")
			g.waitRPCs(t, 1)
			cancelled, cancel := context.WithCancel(context.Background())
			victim := launch(cancelled, c, call, "victim")
			others := launch(context.Background(), c, call, "a", "b")
			waitFor(t, "callers queued", func() bool { return queued(c, rpcSelectCompression) == 3 })
			if tc.cancelWhile == "queued" {
				cancel()
				if a := collect(t, victim, 1)["victim"]; !errors.Is(a.err, context.Canceled) {
					t.Fatalf("cancelled caller: %+v, want context.Canceled and no fallback", a)
				}
				g.releaseAll()
			} else {
				// Let the first call through alone; the next batch is then held at the server.
				g.releaseFirst()
				g.waitRPCs(t, 2)
				cancel()
				if a := collect(t, victim, 1)["victim"]; !errors.Is(a.err, context.Canceled) {
					t.Fatalf("cancelled caller: %+v, want context.Canceled and no fallback", a)
				}
				g.releaseAll()
			}
			collect(t, first, 1)
			for k, a := range collect(t, others, 2) {
				if a.err != nil || a.gotKey != k || a.version != "v1" {
					t.Errorf("caller %s: %+v, want its own answer", k, a)
				}
			}
			if sizes := g.batchSizes(); len(sizes) != 2 || sizes[1] != tc.wantNextItems {
				t.Errorf("items per RPC %v, want [1 %d]", sizes, tc.wantNextItems)
			}
		})
	}
}

func TestCoalescingBatchDeadline(t *testing.T) {
	cases := []struct {
		name      string
		deadlines []time.Duration // per queued caller; 0: no deadline of its own
		timeout   time.Duration   // the client's per-call timeout
		wantAtMin time.Duration   // the batch's deadline at the server is at least this far: 0 means none
		wantAtMax time.Duration
	}{
		{"latest of the members", []time.Duration{time.Second, 3 * time.Second, 2 * time.Second}, 0, 2 * time.Second, 3 * time.Second},
		{"none when a member has none", []time.Duration{time.Second, 0}, 0, 0, 0},
		{"the per-call timeout bounds every member", []time.Duration{0, 0}, 4 * time.Second, 3 * time.Second, 4 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			c := g.client(t, WithTimeout(tc.timeout))
			call := keyedRPCs()[rpcDetectAnomaly]
			first := launch(context.Background(), c, call, "first")
			g.waitRPCs(t, 1)
			var chans []<-chan answer
			for i, d := range tc.deadlines {
				ctx := context.Background()
				if d > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, d)
					defer cancel()
				}
				chans = append(chans, launch(ctx, c, call, fmt.Sprintf("k%d", i)))
			}
			waitFor(t, "callers queued", func() bool { return queued(c, rpcDetectAnomaly) == len(tc.deadlines) })
			g.releaseFirst()
			g.waitRPCs(t, 2)
			remaining := g.deadlines()[1]
			g.releaseAll()
			collect(t, first, 1)
			for _, ch := range chans {
				for k, a := range collect(t, ch, 1) {
					if a.err != nil {
						t.Errorf("caller %s: %v", k, a.err)
					}
				}
			}
			if tc.wantAtMax == 0 && remaining != 0 {
				t.Errorf("batch came with %v left, want no deadline", remaining)
			}
			if tc.wantAtMax > 0 && (remaining <= tc.wantAtMin || remaining > tc.wantAtMax) {
				t.Errorf("batch came with %v left, want in (%v, %v]", remaining, tc.wantAtMin, tc.wantAtMax)
			}
		})
	}
}

func TestCoalescingOwnDeadlineWhileQueued(t *testing.T) {
	cases := []struct {
		name     string
		fallback bool
		wantErr  error
	}{
		{"deadline exceeded alone", false, ErrDeadlineExceeded},
		{"fallback for that caller alone", true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			opts := []Option{WithTimeout(5 * time.Second)}
			if tc.fallback {
				opts = append(opts, WithFallback())
			}
			c := g.client(t, opts...)
			call := keyedRPCs()[rpcDetectAnomaly]
			first := launch(context.Background(), c, call, "first")
			g.waitRPCs(t, 1)
			short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			hurried := launch(short, c, call, "hurried")
			patient := launch(context.Background(), c, call, "patient")
			a := collect(t, hurried, 1)["hurried"]
			if tc.wantErr != nil && !errors.Is(a.err, tc.wantErr) {
				t.Fatalf("hurried caller: %+v, want %v", a, tc.wantErr)
			}
			if tc.fallback && (a.err != nil || a.version != FallbackModelVersion || a.gotKey != "hurried") {
				t.Fatalf("hurried caller: %+v, want its own fallback answer", a)
			}
			g.releaseAll()
			collect(t, first, 1)
			if p := collect(t, patient, 1)["patient"]; p.err != nil || p.version != "v1" {
				t.Errorf("patient caller: %+v, want the model's answer", p)
			}
		})
	}
}

// badRequest is the server's INVALID_ARGUMENT naming one field, with the BadRequest detail.
func badRequest(field, reason string) error {
	st, _ := status.New(codes.InvalidArgument, field+": "+reason).WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: reason}},
	})
	return st.Err()
}

func TestCoalescingInvalidItemFailsOnlyItsCaller(t *testing.T) {
	cases := []struct {
		name      string
		bad       []string // keys the server refuses, by their index in the batch
		wantField string
	}{
		{"one bad item", []string{"bad"}, "nodes[0].uptime_pct"},
		{"two bad items", []string{"bad", "worse"}, "nodes[0].uptime_pct"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			isBad := map[string]bool{}
			for _, k := range tc.bad {
				isBad[k] = true
			}
			g.fail = func(req any) error {
				for i, n := range req.(*inferencev1.DetectAnomalyRequest).GetNodes() {
					if isBad[n.GetNodeId()] {
						return badRequest(fmt.Sprintf("nodes[%d].uptime_pct", i), "NaN is not a number")
					}
				}
				return nil
			}
			c := g.client(t, WithTimeout(5*time.Second), WithFallback())
			call := keyedRPCs()[rpcDetectAnomaly]
			first := launch(context.Background(), c, call, "first")
			g.waitRPCs(t, 1)
			keys := append([]string{"a"}, tc.bad...)
			keys = append(keys, "b")
			answers := launch(context.Background(), c, call, keys...)
			waitFor(t, "callers queued", func() bool { return queued(c, rpcDetectAnomaly) == len(keys) })
			g.releaseAll()
			collect(t, first, 1)
			for k, a := range collect(t, answers, len(keys)) {
				if !isBad[k] {
					if a.err != nil || a.gotKey != k || a.version != "v1" {
						t.Errorf("good caller %s: %+v, want its answer", k, a)
					}
					continue
				}
				var iie *InvalidInputError
				if !errors.As(a.err, &iie) || iie.Field != tc.wantField || iie.Local {
					t.Fatalf("bad caller %s: %v, want the server's refusal of %s", k, a.err, tc.wantField)
				}
				br := badRequestOf(status.Convert(a.err))
				if br == nil || br.GetFieldViolations()[0].GetField() != tc.wantField {
					t.Errorf("bad caller %s: status details %v, want the violation renamed to %s", k, br, tc.wantField)
				}
			}
			// The batch, then once more without each bad item.
			if got := len(g.batchSizes()); got != 2+len(tc.bad) {
				t.Errorf("%d RPCs, want %d", got, 2+len(tc.bad))
			}
		})
	}
}

func TestCoalescingLocalCheckKeepsBadItemOut(t *testing.T) {
	cases := []struct {
		name      string
		call      func(context.Context, *Client) error
		wantField string
	}{
		{"short bandwidth window", func(ctx context.Context, c *Client) error {
			_, err := c.PredictBandwidth(ctx, linkSamples(3))
			return err
		}, "links[0].samples"},
		{"short latency window", func(ctx context.Context, c *Client) error {
			_, err := c.DetectHighLatency(ctx, latencies(5))
			return err
		}, "windows[0].consensus_latencies_ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			c := g.client(t, WithTimeout(5*time.Second))
			first := launch(context.Background(), c, keyedRPCs()[rpcPredictBandwidth], "first")
			g.waitRPCs(t, 1)
			err := tc.call(context.Background(), c) // returns at once, though an RPC is in flight
			var iie *InvalidInputError
			if !errors.As(err, &iie) || !iie.Local || iie.Field != tc.wantField {
				t.Fatalf("err = %v, want a local refusal of %s", err, tc.wantField)
			}
			g.releaseAll()
			collect(t, first, 1)
			if sizes := g.batchSizes(); len(sizes) != 1 {
				t.Errorf("items per RPC %v: the refused item reached the server", sizes)
			}
		})
	}
}

func TestCoalescingFallbackPerCaller(t *testing.T) {
	cases := []struct {
		name         string
		code         codes.Code
		fallback     bool
		wantFallback bool
		wantErr      error
	}{
		{"unavailable, fallback on", codes.Unavailable, true, true, nil},
		{"overloaded, fallback on", codes.ResourceExhausted, true, true, nil},
		{"unavailable, fallback off", codes.Unavailable, false, false, ErrUnavailable},
		{"overloaded, fallback off", codes.ResourceExhausted, false, false, ErrOverloaded},
		// The server (or gRPC core) cancelling a batch while its callers still wait is overload too.
		{"cancelled by the server, fallback on", codes.Canceled, true, true, nil},
		{"cancelled by the server, fallback off", codes.Canceled, false, false, ErrOverloaded},
	}
	for _, tc := range cases {
		for rpc, call := range keyedRPCs() {
			t.Run(tc.name+"/"+rpc, func(t *testing.T) {
				g := newGate()
				g.fail = func(any) error { return status.Error(tc.code, "no") }
				opts := []Option{WithTimeout(5 * time.Second)}
				if tc.fallback {
					opts = append(opts, WithFallback())
				}
				c := g.client(t, opts...)
				first := launch(context.Background(), c, call, "first")
				g.waitRPCs(t, 1)
				rest := launch(context.Background(), c, call, "a", "b", "c")
				waitFor(t, "callers queued", func() bool { return queued(c, rpc) == 3 })
				g.releaseAll()
				answers := collect(t, first, 1)
				for k, a := range collect(t, rest, 3) {
					answers[k] = a
				}
				for k, a := range answers {
					if tc.wantErr != nil && !errors.Is(a.err, tc.wantErr) || tc.wantErr == nil && a.err != nil {
						t.Errorf("caller %s: err %v, want %v", k, a.err, tc.wantErr)
					}
					if errors.Is(a.err, context.Canceled) {
						t.Errorf("caller %s: err %v is context.Canceled, but its context is live", k, a.err)
					}
					if got := a.version == FallbackModelVersion; got != tc.wantFallback || got && a.gotKey != k {
						t.Errorf("caller %s: %+v, want fallback %v for its own item", k, a, tc.wantFallback)
					}
				}
			})
		}
	}
}

func TestCoalescingOptions(t *testing.T) {
	cases := []struct {
		name    string
		opts    []Option
		wantErr bool
		wantOn  bool
	}{
		{"on by default", nil, false, true},
		{"off", []Option{WithoutCoalescing()}, false, false},
		{"bounds", []Option{WithCoalescing(64, 4)}, false, true},
		{"zero items", []Option{WithCoalescing(0, 4)}, true, false},
		{"zero batches", []Option{WithCoalescing(64, 0)}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New("127.0.0.1:1", append([]Option{WithInsecure()}, tc.opts...)...)
			if tc.wantErr {
				if err == nil {
					_ = c.Close()
					t.Fatal("New succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if on := c.co != nil; on != tc.wantOn {
				t.Errorf("coalescing on = %v, want %v", on, tc.wantOn)
			}
		})
	}
}

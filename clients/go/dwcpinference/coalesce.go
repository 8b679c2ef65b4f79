// Coalescing: concurrent single-item calls of one RPC leave together as one batch RPC.

package dwcpinference

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults of WithCoalescing.
const (
	// DefaultCoalesceMaxItems bounds the items of one coalesced batch. The server accepts up to 1024 per
	// call (GetModelInfo's max_batch_items) and keeps the last 64 of its 2048-item admission budget for
	// calls of at most 64 items, so four RPCs with two batches of 256 each in flight stay within that budget.
	DefaultCoalesceMaxItems = 256
	// DefaultCoalesceMaxBatches bounds the coalesced batches of one RPC in flight at once.
	DefaultCoalesceMaxBatches = 2
)

// Member states: waiting in the queue, sent in a batch, or gone (its caller stopped waiting).
const (
	memberQueued int32 = iota
	memberSent
	memberGone
)

// result is what one caller gets back.
type result[Out any] struct {
	out Out
	err error
}

// member is one single-item call waiting for its batch.
type member[In, Out any] struct {
	ctx    context.Context // the caller's context bounded by the per-call timeout
	caller context.Context // the caller's own context: tells its cancellation from the server's
	item   In
	done   chan result[Out] // buffered: the batch never blocks on a caller that left
	state  atomic.Int32
}

// coalescer turns one RPC's concurrent single-item calls into batches. The first call when nothing of the
// RPC is in flight is sent at once, alone, under its caller's own context; while a batch is in flight,
// arrivals queue and leave together when it returns (or as soon as maxItems are queued, if fewer than
// maxBatches are in flight). A batch of several callers runs under a context of its own whose deadline
// is the latest of theirs (none if one has none), cancelled when every one of them has stopped waiting.
type coalescer[In, Out any] struct {
	rpc        string
	field      string // the request's repeated field, "links": where the server's field paths start
	maxItems   int
	maxBatches int
	check      func(In) error // local validation of one item, as item 0
	// one batch RPC, errors mapped against live (a caller's own context, not the per-call timeout's)
	send     func(ctx, live context.Context, items []In) ([]Out, error)
	fallback func(In) Out                                     // the heuristic answer for one item
	canFall  func(error) bool                                 // whether the fallback may answer err
	observe  func(ctx context.Context, rpc string, items int) // every batch sent; nil: not observed
	fellBack func(ctx context.Context, rpc string, items int) // every item the fallback answered

	mu       sync.Mutex
	inFlight int
	queue    []*member[In, Out]
}

// call answers one item, through a batch when other calls of the RPC are in flight.
func (co *coalescer[In, Out]) call(ctx context.Context, timeout time.Duration, item In) (Out, error) {
	if err := co.check(item); err != nil {
		var zero Out
		return zero, err
	}
	caller := ctx
	ctx, cancel := callContext(ctx, timeout)
	defer cancel()
	out, err := co.await(caller, ctx, item)
	if err != nil && co.canFall(err) {
		co.fellBack(ctx, co.rpc, 1)
		return co.fallback(item), nil
	}
	return out, err
}

func (co *coalescer[In, Out]) await(caller, ctx context.Context, item In) (Out, error) {
	co.mu.Lock()
	if co.inFlight == 0 {
		// Nothing in flight: no reason to wait. Alone, the call can run under its own context.
		co.inFlight++
		co.mu.Unlock()
		outs, err := co.sendObserved(ctx, caller, []In{item})
		if next := co.finished(); next != nil {
			go co.run(next)
		}
		if err != nil {
			var zero Out
			return zero, err
		}
		return outs[0], nil
	}
	m := &member[In, Out]{ctx: ctx, caller: caller, item: item, done: make(chan result[Out], 1)}
	co.queue = append(co.queue, m)
	var full []*member[In, Out]
	if len(co.queue) >= co.maxItems && co.inFlight < co.maxBatches {
		full = co.take()
	}
	co.mu.Unlock()
	if full != nil {
		go co.run(full)
	}
	select {
	case r := <-m.done:
		return r.out, r.err
	case <-ctx.Done():
	}
	m.state.Store(memberGone)
	select {
	case r := <-m.done: // answered as the context ended: the answer is still good
		return r.out, r.err
	default:
	}
	var zero Out
	return zero, mapError(ctx, co.rpc, status.FromContextError(ctx.Err()).Err())
}

// take removes up to maxItems callers still waiting from the queue and counts their batch in flight; nil
// when none is waiting. co.mu is held.
func (co *coalescer[In, Out]) take() []*member[In, Out] {
	var batch []*member[In, Out]
	n := 0
	for ; n < len(co.queue) && len(batch) < co.maxItems; n++ {
		if m := co.queue[n]; m.state.CompareAndSwap(memberQueued, memberSent) {
			batch = append(batch, m)
		}
	}
	co.queue = co.queue[n:]
	if len(co.queue) == 0 {
		co.queue = nil // let the backing array go
	}
	if batch != nil {
		co.inFlight++
	}
	return batch
}

// finished ends one batch in flight and takes the next from the queue, if any caller is waiting.
func (co *coalescer[In, Out]) finished() []*member[In, Out] {
	co.mu.Lock()
	defer co.mu.Unlock()
	co.inFlight--
	for len(co.queue) > 0 && co.inFlight < co.maxBatches {
		if batch := co.take(); batch != nil {
			return batch
		}
	}
	return nil
}

// run sends batches until the queue is empty.
func (co *coalescer[In, Out]) run(batch []*member[In, Out]) {
	for batch != nil {
		co.sendBatch(batch)
		batch = co.finished()
	}
}

func (co *coalescer[In, Out]) sendObserved(ctx, live context.Context, items []In) ([]Out, error) {
	if co.observe != nil {
		co.observe(ctx, co.rpc, len(items))
	}
	return co.send(ctx, live, items)
}

// liveCaller is a context of the batch's callers that has not ended, if any: an error the server sends
// while one of them still waits is the server's, not a caller's cancellation.
func liveCaller[In, Out any](batch []*member[In, Out]) context.Context {
	for _, m := range batch {
		if m.caller.Err() == nil {
			return m.caller
		}
	}
	return batch[0].caller
}

// sendBatch sends one batch and answers each of its callers. An INVALID_ARGUMENT naming one item fails
// only that item's caller; the others are sent again without it.
func (co *coalescer[In, Out]) sendBatch(batch []*member[In, Out]) {
	for len(batch) > 0 {
		items := make([]In, len(batch))
		for i, m := range batch {
			items[i] = m.item
		}
		ctx, cancel := batchContext(batch)
		outs, err := co.sendObserved(ctx, liveCaller(batch), items)
		cancel()
		if err == nil {
			for i, m := range batch {
				m.done <- result[Out]{out: outs[i]}
			}
			return
		}
		bad, badErr := co.invalidItem(err, len(batch))
		if bad < 0 {
			for _, m := range batch {
				m.done <- result[Out]{err: err}
			}
			return
		}
		batch[bad].done <- result[Out]{err: badErr}
		rest := make([]*member[In, Out], 0, len(batch)-1)
		for i, m := range batch {
			if i != bad && m.state.Load() != memberGone {
				rest = append(rest, m)
			}
		}
		batch = rest
	}
}

// invalidItem finds the item an INVALID_ARGUMENT names ("links[3].samples[9].throughput_mbps": item 3)
// and returns its index with the error its caller would have had alone ("links[0]..."); -1 when err names
// no item of the batch. A refusal naming no item cannot be placed and fails the whole batch.
func (co *coalescer[In, Out]) invalidItem(err error, n int) (int, error) {
	var iie *InvalidInputError
	if !errors.As(err, &iie) {
		return -1, nil
	}
	rest, ok := strings.CutPrefix(iie.Field, co.field+"[")
	if !ok {
		return -1, nil
	}
	digits, tail, ok := strings.Cut(rest, "]")
	index, convErr := strconv.Atoi(digits)
	if !ok || convErr != nil || index < 0 || index >= n {
		return -1, nil
	}
	field := co.field + "[0]" + tail
	message := field + ": " + iie.Reason
	st, detailErr := status.New(codes.InvalidArgument, message).WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: iie.Reason}},
	})
	if detailErr != nil {
		st = status.New(codes.InvalidArgument, message)
	}
	return index, &InvalidInputError{Field: field, Reason: iie.Reason, Message: message, st: st}
}

// batchContext is the context a batch of several callers is sent under: the latest of their deadlines, or
// none when one of them has none, and cancelled once every caller has stopped waiting.
func batchContext[In, Out any](batch []*member[In, Out]) (context.Context, context.CancelFunc) {
	var latest time.Time
	bounded := true
	for _, m := range batch {
		d, ok := m.ctx.Deadline()
		if !ok {
			bounded = false
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	if bounded {
		ctx, cancel = context.WithDeadline(context.Background(), latest)
	}
	waiting := atomic.Int32{}
	waiting.Store(int32(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, m := range batch {
		stops[i] = context.AfterFunc(m.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// newCoalescer makes the coalescer of one RPC of c.
func newCoalescer[In, Req, Resp, Out any](c *Client, rpc, field string, check func(In) error,
	build func([]In) (Req, error), fn func(context.Context, Req, ...grpc.CallOption) (Resp, error),
	convert func(Resp) []Out, fallback func(In) Out) *coalescer[In, Out] {
	return &coalescer[In, Out]{
		rpc: rpc, field: field, maxItems: c.cfg.coalesceItems, maxBatches: c.cfg.coalesceBatches,
		check: check, fallback: fallback, canFall: c.canFallBack,
		observe: c.cfg.metrics.batchSent, fellBack: c.cfg.metrics.fellBack,
		send: func(ctx, live context.Context, items []In) ([]Out, error) {
			req, err := build(items)
			if err != nil {
				return nil, err
			}
			resp, err := fn(ctx, req)
			if err != nil {
				return nil, mapError(live, rpc, err)
			}
			out := convert(resp)
			if err := checkCount(rpc, len(out), len(items)); err != nil {
				return nil, err
			}
			return out, nil
		},
	}
}

// coalescers are the client's coalescers, one per model RPC.
type coalescers struct {
	bandwidth   *coalescer[LinkWindow, BandwidthPrediction]
	compression *coalescer[CompressionFeatures, CompressionChoice]
	anomaly     *coalescer[NodeMetrics, AnomalyResult]
	latency     *coalescer[LatencyWindow, LatencyResult]
}

// newCoalescers makes the four coalescers of c, or nil when coalescing is off.
func newCoalescers(c *Client) *coalescers {
	if c.cfg.coalesceItems <= 0 {
		return nil
	}
	return &coalescers{
		bandwidth: newCoalescer(c, rpcPredictBandwidth, "links", func(w LinkWindow) error {
			return checkLength("links[%d].samples", 0, len(w.Samples), BandwidthWindowSamples)
		}, bandwidthRequest, c.ch.bandwidth.stub.PredictBandwidth, bandwidthResults, FallbackBandwidth),
		compression: newCoalescer(c, rpcSelectCompression, "items", func(CompressionFeatures) error { return nil },
			compressionRequest, c.ch.compression.stub.SelectCompression, compressionResults, FallbackCompression),
		anomaly: newCoalescer(c, rpcDetectAnomaly, "nodes", func(NodeMetrics) error { return nil },
			anomalyRequest, c.ch.anomaly.stub.DetectAnomaly, anomalyResults, FallbackAnomaly),
		latency: newCoalescer(c, rpcDetectHighLatency, "windows", func(w LatencyWindow) error {
			return checkLength("windows[%d].consensus_latencies_ms", 0, len(w.ConsensusLatenciesMs), LatencyWindowSamples)
		}, latencyRequest, c.ch.latency.stub.DetectHighLatency, latencyResults, FallbackLatency),
	}
}

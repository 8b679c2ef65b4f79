// The client under overload against the real server: every call returns a prediction, a fallback answer or
// ErrOverloaded (or, without fallback, ErrDeadlineExceeded), never a bare context error (issue 17, finding 6).

package dwcpinference

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// overloadFlags make a server that sheds most of a 200-goroutine load both ways it can: admission
// (RESOURCE_EXHAUSTED past 2 in flight) and gRPC core (CANCELLED past 1 waiting call).
var overloadFlags = []string{"--max-in-flight", "2", "--grpc-threads", "1", "--max-pending-rpcs", "1"}

const (
	overloadGoroutines = 200
	overloadCallsEach  = 25
	overloadBatch      = 8
)

// overloadOutcomes counts what the calls returned; other holds the first few unexpected errors.
type overloadOutcomes struct {
	mu                                        sync.Mutex
	predicted, fallback, overloaded, deadline int
	other                                     []error
}

func (o *overloadOutcomes) add(results []AnomalyResult, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err == nil && len(results) == overloadBatch && results[0].ModelVersion == FallbackModelVersion:
		o.fallback++
	case err == nil && len(results) == overloadBatch:
		o.predicted++
	case err != nil && errors.Is(err, ErrOverloaded):
		o.overloaded++
	case err != nil && errors.Is(err, ErrDeadlineExceeded) && !errors.Is(err, context.Canceled):
		o.deadline++ // not a refusal: the call's 10 ms ran out (without fallback only)
	default:
		if len(o.other) < 5 {
			o.other = append(o.other, fmt.Errorf("%d results, err %w", len(results), err))
		} else {
			o.other = append(o.other, nil)
		}
	}
}

func runOverload(t *testing.T, addr string, opts ...Option) *overloadOutcomes {
	t.Helper()
	// The default 10 ms timeout: a refusal arriving as it runs out must still read as a refusal (issue 17
	// saw those as a bare context.Canceled, with no fallback answer).
	c, err := New(addr, append([]Option{WithInsecure()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ready, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitReady(ready); err != nil {
		t.Fatal(err)
	}
	nodes := make([]NodeMetrics, overloadBatch)
	for i := range nodes {
		nodes[i] = nodeMetrics()
		nodes[i].NodeID = fmt.Sprintf("n%d", i)
	}
	out := &overloadOutcomes{}
	var wg sync.WaitGroup
	for range overloadGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range overloadCallsEach {
				out.add(c.DetectAnomalyBatch(context.Background(), nodes))
			}
		}()
	}
	wg.Wait()
	return out
}

func TestLiveOverloadSurfacesAsPredictionFallbackOrErrOverloaded(t *testing.T) {
	requireIntegration(t)
	srv, err := startServer(overloadFlags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Error(err)
		}
	})
	total := overloadGoroutines * overloadCallsEach
	cases := []struct {
		name string
		opts []Option
	}{
		{"WithFallback: a prediction or the fallback's answer", []Option{WithFallback()}},
		{"without fallback: a prediction, ErrOverloaded or ErrDeadlineExceeded", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runOverload(t, srv.addr, tc.opts...)
			t.Logf("%d calls: %d predicted, %d fallback, %d ErrOverloaded, %d ErrDeadlineExceeded, %d other",
				total, got.predicted, got.fallback, got.overloaded, got.deadline, len(got.other))
			if len(got.other) > 0 {
				t.Fatalf("%d calls returned something else, first: %v", len(got.other), got.other[:min(5, len(got.other))])
			}
			if got.predicted == 0 || got.fallback+got.overloaded == 0 {
				t.Fatalf("no overload or no answer at all: %d predicted, %d shed; the test tests nothing", got.predicted, got.fallback+got.overloaded)
			}
			if tc.opts == nil && got.fallback > 0 || tc.opts != nil && got.overloaded+got.deadline > 0 {
				t.Fatalf("fallback %d, ErrOverloaded %d: the fallback must answer every shed call when enabled, never otherwise", got.fallback, got.overloaded)
			}
		})
	}
}

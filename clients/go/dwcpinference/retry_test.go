// Retries: UNAVAILABLE is retried with backoff inside the deadline; nothing else is.

package dwcpinference

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRetries(t *testing.T) {
	cases := []struct {
		name      string
		code      codes.Code // what the server fails with
		failures  int64      // how many calls fail before the server answers
		retries   int
		backoff   time.Duration
		timeout   time.Duration
		wantCalls int64
		wantErr   error // nil: success
	}{
		{"no retries by default", codes.Unavailable, 1, 0, 0, time.Second, 1, ErrUnavailable},
		{"2 failures, 3 retries", codes.Unavailable, 2, 3, time.Millisecond, time.Second, 3, nil},
		{"3 failures, 3 retries", codes.Unavailable, 3, 3, time.Millisecond, time.Second, 4, nil},
		{"4 failures, 3 retries", codes.Unavailable, 4, 3, time.Millisecond, time.Second, 4, ErrUnavailable},
		{"invalid argument never retried", codes.InvalidArgument, 1, 3, time.Millisecond, time.Second, 1, ErrInvalidInput},
		{"deadline exceeded never retried", codes.DeadlineExceeded, 1, 3, time.Millisecond, time.Second, 1, ErrDeadlineExceeded},
		{"overload never retried", codes.ResourceExhausted, 1, 3, time.Millisecond, time.Second, 1, ErrOverloaded},
		// The first retry would wait 500 ms, past the 100 ms deadline: give up at once with the real cause.
		{"backoff past the deadline", codes.Unavailable, 1, 3, 500 * time.Millisecond, 100 * time.Millisecond, 1, ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServer{version: "v1"}
			f.before = func(_ context.Context, n int64) error {
				if n <= tc.failures {
					return status.Error(tc.code, "nodes[0].rtt_ms: injected failure")
				}
				return nil
			}
			opts := []Option{WithTimeout(tc.timeout)}
			if tc.retries > 0 {
				opts = append(opts, WithRetries(tc.retries, tc.backoff))
			}
			c := newBufClient(t, f, opts...)
			start := time.Now()
			r, err := c.DetectAnomaly(context.Background(), nodeMetrics())
			elapsed := time.Since(start)
			if tc.wantErr == nil && (err != nil || r.ModelVersion != "v1") || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("result %+v, err %v; want err %v", r, err, tc.wantErr)
			}
			if got := f.calls.Load(); got != tc.wantCalls {
				t.Fatalf("server saw %d calls, want %d", got, tc.wantCalls)
			}
			if elapsed > tc.timeout {
				t.Fatalf("call took %v, past its %v timeout", elapsed, tc.timeout)
			}
		})
	}
}

func TestRetryBackoffGrows(t *testing.T) {
	var stamps []time.Time
	f := &fakeServer{version: "v1", before: func(_ context.Context, n int64) error {
		stamps = append(stamps, time.Now())
		if n <= 3 {
			return status.Error(codes.Unavailable, "down")
		}
		return nil
	}}
	c := newBufClient(t, f, WithTimeout(5*time.Second), WithRetries(3, 20*time.Millisecond))
	if _, err := c.DetectAnomaly(context.Background(), nodeMetrics()); err != nil {
		t.Fatal(err)
	}
	// Waits are 20, 40, 80 ms each +-20 %.
	for i, want := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond} {
		gap := stamps[i+1].Sub(stamps[i])
		if gap < want*8/10 || gap > want*12/10+30*time.Millisecond {
			t.Errorf("wait before retry %d = %v, want about %v", i+1, gap, want)
		}
	}
}

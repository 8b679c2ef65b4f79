// Retries: grpc-go retries UNAVAILABLE by the service config's policy inside the deadline, throttled; nothing
// else is retried.

package dwcpinference

import (
	"context"
	"encoding/json"
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
		// The first retry would wait 400-600 ms, past the 100 ms deadline: the deadline ends the call.
		{"backoff past the deadline", codes.Unavailable, 1, 3, 500 * time.Millisecond, 100 * time.Millisecond, 1, ErrDeadlineExceeded},
		// grpc-go's default cap is 5 attempts; WithRetries(6) must still make 7.
		{"more than grpc-go's default 5 attempts", codes.Unavailable, 6, 6, time.Millisecond, 5 * time.Second, 7, nil},
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
			r, err := c.DetectAnomaly(context.Background(), nodeMetrics())
			if tc.wantErr == nil && (err != nil || r.ModelVersion != "v1") || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("result %+v, err %v; want err %v", r, err, tc.wantErr)
			}
			if got := f.calls.Load(); got != tc.wantCalls {
				t.Fatalf("server saw %d calls, want %d", got, tc.wantCalls)
			}
		})
	}
}

// The policy grpc-go is given: UNAVAILABLE only, n+1 attempts, the backoff doubling to 1 s, throttled.
func TestRetryServiceConfig(t *testing.T) {
	var config struct {
		MethodConfig []methodConfig  `json:"methodConfig"`
		Throttling   retryThrottling `json:"retryThrottling"`
	}
	if err := json.Unmarshal([]byte(serviceConfig("", 3, 20*time.Millisecond)), &config); err != nil {
		t.Fatal(err)
	}
	want := retryPolicy{MaxAttempts: 4, InitialBackoff: "0.020000000s", MaxBackoff: "1.000000000s",
		BackoffMultiplier: 2, RetryableStatusCodes: []string{"UNAVAILABLE"}}
	if len(config.MethodConfig) != 1 || !equalPolicy(config.MethodConfig[0].RetryPolicy, want) {
		t.Fatalf("method config %+v, want one with %+v", config.MethodConfig, want)
	}
	if config.Throttling != (retryThrottling{MaxTokens: retryMaxTokens, TokenRatio: retryTokenRatio}) {
		t.Fatalf("retry throttling %+v", config.Throttling)
	}
	if got := serviceConfig("", 0, 0); got != `{"loadBalancingConfig":[{"round_robin":{}}]}` {
		t.Fatalf("without retries: %s", got)
	}
}

func equalPolicy(a, b retryPolicy) bool {
	return a.MaxAttempts == b.MaxAttempts && a.InitialBackoff == b.InitialBackoff && a.MaxBackoff == b.MaxBackoff &&
		a.BackoffMultiplier == b.BackoffMultiplier && len(a.RetryableStatusCodes) == 1 &&
		a.RetryableStatusCodes[0] == b.RetryableStatusCodes[0]
}

// A service that fails every call is not hammered: once the channel's tokens fall to half, calls are made
// once each instead of 1 + retries times.
func TestRetryThrottlingStopsARetryStorm(t *testing.T) {
	const calls, retries = 40, 3
	f := &fakeServer{version: "v1", before: func(context.Context, int64) error {
		return status.Error(codes.Unavailable, "down")
	}}
	c := newBufClient(t, f, WithTimeout(5*time.Second), WithRetries(retries, time.Microsecond))
	for range calls {
		if _, err := c.DetectAnomaly(context.Background(), nodeMetrics()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err %v, want ErrUnavailable", err)
		}
	}
	// Unthrottled: 160 attempts. Throttled: the first retryMaxTokens/2 failures are retried, then one each.
	if got, most := f.calls.Load(), int64(retryMaxTokens/2+calls); got > most {
		t.Fatalf("server saw %d attempts for %d calls, want at most %d (throttled)", got, calls, most)
	}
}

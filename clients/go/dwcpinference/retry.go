// Retries of UNAVAILABLE by grpc-go itself: a service-config retryPolicy, with retryThrottling.

package dwcpinference

import (
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
)

// maxBackoff caps the wait between two attempts.
const maxBackoff = time.Second

// Retry throttling (gRFC A6): every retryable failure costs a channel one token and every success gives back
// retryTokenRatio; while a channel holds retryMaxTokens/2 or fewer, failed calls are not retried. A replica
// dying fails the calls in flight on it at once, so the first retryMaxTokens/2 = 10 failures in a row are
// always retried; past that, a service failing most calls gets each call once, not 1 + n times.
const (
	retryMaxTokens  = 20
	retryTokenRatio = 0.1
)

// retryPolicy is the service config's retry policy for every RPC of the service: UNAVAILABLE only, up to
// retries more attempts, backoff doubling up to maxBackoff; grpc-go adds +-20 % jitter to each wait.
// UNAVAILABLE means the call did not reach a model (no connection, replica draining), so repeating it is
// safe; every other code is final, RESOURCE_EXHAUSTED above all (retrying overload deepens it).
type retryPolicy struct {
	MaxAttempts          int      `json:"maxAttempts"`
	InitialBackoff       string   `json:"initialBackoff"`
	MaxBackoff           string   `json:"maxBackoff"`
	BackoffMultiplier    float64  `json:"backoffMultiplier"`
	RetryableStatusCodes []string `json:"retryableStatusCodes"`
}

type methodConfig struct {
	Name        []map[string]string `json:"name"`
	RetryPolicy retryPolicy         `json:"retryPolicy"`
}

type retryThrottling struct {
	MaxTokens  int     `json:"maxTokens"`
	TokenRatio float64 `json:"tokenRatio"`
}

// newRetryPolicy is the method config of WithRetries(retries, backoff).
func newRetryPolicy(service string, retries int, backoff time.Duration) methodConfig {
	return methodConfig{
		Name: []map[string]string{{"service": service}},
		RetryPolicy: retryPolicy{
			MaxAttempts:          retries + 1,
			InitialBackoff:       durationJSON(max(backoff, time.Nanosecond)), // grpc-go requires > 0
			MaxBackoff:           durationJSON(max(maxBackoff, backoff)),
			BackoffMultiplier:    2,
			RetryableStatusCodes: []string{codeName(codes.Unavailable)},
		},
	}
}

// durationJSON is d in the protobuf JSON form of a Duration ("0.020000000s").
func durationJSON(d time.Duration) string { return fmt.Sprintf("%.9fs", d.Seconds()) }

// codeName is a code as the service config spells it ("UNAVAILABLE").
func codeName(c codes.Code) string {
	if c == codes.Unavailable {
		return "UNAVAILABLE"
	}
	panic(fmt.Sprintf("dwcpinference: no service-config name for %v", c))
}

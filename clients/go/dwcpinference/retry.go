// Retries with exponential backoff on UNAVAILABLE, as a unary client interceptor.

package dwcpinference

import (
	"context"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxBackoff caps the wait between two attempts.
const maxBackoff = time.Second

// retryInterceptor retries UNAVAILABLE up to maxRetries times. UNAVAILABLE means the call did not reach a
// model (no connection, replica draining), so repeating it is safe; every other code is final.
func retryInterceptor(maxRetries int, backoff time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		delay := backoff
		for attempt := 0; ; attempt++ {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil || attempt >= maxRetries || status.Code(err) != codes.Unavailable {
				return err
			}
			wait := jitter(delay)
			// A retry that cannot start before the deadline would only trade UNAVAILABLE for
			// DEADLINE_EXCEEDED; return the real cause instead.
			if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
				return err
			}
			if wait > 0 {
				timer := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					timer.Stop()
					return err
				case <-timer.C:
				}
			}
			delay = min(2*delay, maxBackoff)
		}
	}
}

// jitter spreads d by +-20 % so that many clients do not retry a recovering replica in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// retryingConn is a connection whose unary calls go through the retry interceptor. Wrapping the
// connection instead of adding a dial option lets retries work on a connection given with WithGRPCConn too.
type retryingConn struct {
	*grpc.ClientConn
	retry grpc.UnaryClientInterceptor
}

// Invoke runs one unary call, retried by the interceptor.
func (r retryingConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return r.retry(ctx, method, args, reply, r.ClientConn, invokeOn, opts...)
}

// invokeOn is the plain unary call, as the last step of an interceptor.
func invokeOn(ctx context.Context, method string, args, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
	return cc.Invoke(ctx, method, args, reply, opts...)
}

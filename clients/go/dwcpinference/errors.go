// Mapping of gRPC status codes to the package's Go errors.

package dwcpinference

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors; test for them with errors.Is. The errors returned by the client also carry the gRPC
// status (status.FromError / status.Code work on them).
var (
	// ErrInvalidInput: the request was refused as a whole (INVALID_ARGUMENT, or a local check). Retrying the
	// same request cannot succeed. The concrete error is an *InvalidInputError naming the field.
	ErrInvalidInput = errors.New("dwcpinference: invalid input")
	// ErrUnavailable: no replica could be reached or it refused the call (UNAVAILABLE, or RESOURCE_EXHAUSTED,
	// which also matches ErrOverloaded). Transient: a later call may succeed.
	ErrUnavailable = errors.New("dwcpinference: service unavailable")
	// ErrOverloaded: the service shed the call under load (RESOURCE_EXHAUSTED, or CANCELLED by the server
	// while the caller's context is live: gRPC core's backlog bound, --max-pending-rpcs). Also matches
	// ErrUnavailable.
	// Not retried by the client: retrying an overloaded service only deepens the overload.
	ErrOverloaded = errors.New("dwcpinference: service overloaded")
	// ErrDeadlineExceeded: no answer within the call's deadline (the per-call timeout or the caller's
	// context deadline). Also matches context.DeadlineExceeded.
	ErrDeadlineExceeded = errors.New("dwcpinference: deadline exceeded")
)

// InvalidInputError is a refused request, with the field path and reason the server (or the client's local
// check) gave, for example Field "links[3].samples[9].rtt_ms", Reason "-5 is below the minimum 0 ms". From
// the server they come from the google.rpc.BadRequest field violation in the status details.
type InvalidInputError struct {
	Field   string // request field path, e.g. "links[0].samples"; empty if the server named none
	Reason  string // why the value was refused
	Message string // the server's full status message; empty for a local check
	Local   bool   // true when the client refused the request before sending it

	st *status.Status // the server's status, details included; nil for a local check
}

func (e *InvalidInputError) Error() string {
	where := "server"
	if e.Local {
		where = "client check"
	}
	if e.Field == "" {
		return fmt.Sprintf("dwcpinference: invalid input (%s): %s", where, e.Reason)
	}
	return fmt.Sprintf("dwcpinference: invalid input (%s): %s: %s", where, e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidInput) true.
func (e *InvalidInputError) Is(target error) bool { return target == ErrInvalidInput }

// GRPCStatus returns the INVALID_ARGUMENT status, so status.Code works on the error; for a refusal by the
// server it is the server's status, so its details (the BadRequest) are there too.
func (e *InvalidInputError) GRPCStatus() *status.Status {
	if e.st != nil {
		return e.st
	}
	msg := e.Message
	if msg == "" {
		msg = e.Field + ": " + e.Reason
	}
	return status.New(codes.InvalidArgument, msg)
}

// rpcError is a failed call other than invalid input: the sentinels it matches plus the gRPC status.
type rpcError struct {
	rpc   string
	st    *status.Status
	kinds []error
}

func (e *rpcError) Error() string {
	return fmt.Sprintf("%v: %s: %s: %s", e.kinds[0], e.rpc, e.st.Code(), e.st.Message())
}

func (e *rpcError) Unwrap() []error            { return e.kinds }
func (e *rpcError) GRPCStatus() *status.Status { return e.st }

// mapError turns an error from a generated stub into the package's errors; ctx is the caller's context
// (not the per-call timeout's), which tells a caller's cancellation from the server's.
func mapError(ctx context.Context, rpc string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("dwcpinference: %s: %w", rpc, err)
	}
	switch st.Code() {
	case codes.InvalidArgument:
		return parseInvalidInput(st)
	case codes.Unavailable:
		return &rpcError{rpc: rpc, st: st, kinds: []error{ErrUnavailable}}
	case codes.ResourceExhausted:
		return &rpcError{rpc: rpc, st: st, kinds: []error{ErrOverloaded, ErrUnavailable}}
	case codes.DeadlineExceeded:
		return &rpcError{rpc: rpc, st: st, kinds: []error{ErrDeadlineExceeded, context.DeadlineExceeded}}
	case codes.Canceled:
		if ctx.Err() == nil {
			// The caller did not cancel: the server did. gRPC core cancels calls past its pending-call bound
			// (--max-pending-rpcs, or core's own 1,000 / 3,000) before any handler runs: a refusal under
			// overload (docs/serving.md, "Where CANCELLED comes from").
			return &rpcError{rpc: rpc, st: st, kinds: []error{ErrOverloaded, ErrUnavailable}}
		}
		return &rpcError{rpc: rpc, st: st, kinds: []error{context.Canceled}}
	}
	return fmt.Errorf("dwcpinference: %s: %w", rpc, err)
}

// parseInvalidInput reads the field path and reason from the google.rpc.BadRequest detail the server sends
// (its first field violation: the server names the first bad value). Only when the status has no BadRequest
// (an older server) does it fall back to the message form "path: reason".
func parseInvalidInput(st *status.Status) *InvalidInputError {
	e := &InvalidInputError{Message: st.Message(), Reason: st.Message(), st: st}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			if vs := br.GetFieldViolations(); len(vs) > 0 {
				e.Field, e.Reason = vs[0].GetField(), vs[0].GetDescription()
			}
			return e
		}
	}
	if path, reason, ok := strings.Cut(st.Message(), ": "); ok && path != "" && !strings.ContainsAny(path, " \t") {
		e.Field, e.Reason = path, reason
	}
	return e
}

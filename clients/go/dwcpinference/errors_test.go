// Error mapping: gRPC status codes from the server become the package's sentinel errors.

package dwcpinference

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		name       string
		serverErr  error
		wantIs     []error
		wantNot    []error
		wantCode   codes.Code
		wantField  string // for invalid input
		wantReason string
	}{
		{"field path and reason from the message",
			status.Error(codes.InvalidArgument, "nodes[0].rtt_ms: must be > 0, got 0"),
			[]error{ErrInvalidInput}, []error{ErrUnavailable, ErrDeadlineExceeded}, codes.InvalidArgument,
			"nodes[0].rtt_ms", "must be > 0, got 0"},
		{"message without a path",
			status.Error(codes.InvalidArgument, "batch of 2000 items exceeds the limit: 1024"),
			[]error{ErrInvalidInput}, nil, codes.InvalidArgument,
			"", "batch of 2000 items exceeds the limit: 1024"},
		{"unavailable", status.Error(codes.Unavailable, "draining"),
			[]error{ErrUnavailable}, []error{ErrInvalidInput, ErrOverloaded, ErrDeadlineExceeded}, codes.Unavailable, "", ""},
		{"resource exhausted", status.Error(codes.ResourceExhausted, "too many requests in flight"),
			[]error{ErrOverloaded, ErrUnavailable}, []error{ErrDeadlineExceeded}, codes.ResourceExhausted, "", ""},
		{"cancelled by the server (its backlog bound), not by the caller", status.Error(codes.Canceled, "CANCELLED"),
			[]error{ErrOverloaded, ErrUnavailable}, []error{context.Canceled, ErrDeadlineExceeded}, codes.Canceled, "", ""},
		{"deadline from the server", status.Error(codes.DeadlineExceeded, "deadline cannot be met"),
			[]error{ErrDeadlineExceeded, context.DeadlineExceeded}, []error{ErrUnavailable}, codes.DeadlineExceeded, "", ""},
		{"internal stays a plain status", status.Error(codes.Internal, "boom"),
			nil, []error{ErrInvalidInput, ErrUnavailable, ErrDeadlineExceeded}, codes.Internal, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServer{version: "v1", before: func(context.Context, int64) error { return tc.serverErr }}
			c := newBufClient(t, f, WithTimeout(5*time.Second))
			_, err := c.DetectAnomaly(context.Background(), nodeMetrics())
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("errors.Is(%v, %v) = false", err, want)
				}
			}
			for _, not := range tc.wantNot {
				if errors.Is(err, not) {
					t.Errorf("errors.Is(%v, %v) = true", err, not)
				}
			}
			if got := status.Code(err); got != tc.wantCode {
				t.Errorf("status.Code = %v, want %v", got, tc.wantCode)
			}
			if tc.wantCode != codes.InvalidArgument {
				return
			}
			var iie *InvalidInputError
			if !errors.As(err, &iie) {
				t.Fatalf("%v is not an *InvalidInputError", err)
			}
			if iie.Field != tc.wantField || iie.Reason != tc.wantReason || iie.Local {
				t.Errorf("got field %q reason %q local %v, want %q %q remote", iie.Field, iie.Reason, iie.Local, tc.wantField, tc.wantReason)
			}
		})
	}
}

// withDetails is an INVALID_ARGUMENT status error with message and the given details.
func withDetails(t *testing.T, message string, details ...protoadapt.MessageV1) error {
	t.Helper()
	st, err := status.New(codes.InvalidArgument, message).WithDetails(details...)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

func violation(field, description string) *errdetails.BadRequest {
	return &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: description}}}
}

// The field path comes from the server's google.rpc.BadRequest detail; the message is parsed only when the
// status has no BadRequest (a server older than the details).
func TestInvalidInputFieldComesFromTheDetail(t *testing.T) {
	const serverMessage = "links[0].samples[9].rtt_ms: -5 is below the minimum 0 ms"
	cases := []struct {
		name       string
		serverErr  error
		wantField  string
		wantReason string
		wantDetail bool // the returned error's status still carries the BadRequest
	}{
		{"detail and message as this server sends them",
			withDetails(t, serverMessage, violation("links[0].samples[9].rtt_ms", "-5 is below the minimum 0 ms")),
			"links[0].samples[9].rtt_ms", "-5 is below the minimum 0 ms", true},
		{"the detail wins over the message",
			withDetails(t, "nodes[0].rtt_ms: must be > 0", violation("nodes[2].uptime_pct", "must be <= 100")),
			"nodes[2].uptime_pct", "must be <= 100", true},
		{"detail beside a message without a path",
			withDetails(t, "request refused", violation("nodes[0].uptime_pct", "must be <= 100")),
			"nodes[0].uptime_pct", "must be <= 100", true},
		{"a field path with a space in the detail is taken as is",
			withDetails(t, "refused", violation("items[0].odd name", "unknown")),
			"items[0].odd name", "unknown", true},
		{"a BadRequest without violations: the message is not second-guessed",
			withDetails(t, "nodes[0].rtt_ms: must be > 0", &errdetails.BadRequest{}),
			"", "nodes[0].rtt_ms: must be > 0", true},
		{"older server, no details: path parsed from the message",
			status.Error(codes.InvalidArgument, serverMessage),
			"links[0].samples[9].rtt_ms", "-5 is below the minimum 0 ms", false},
		{"older server, a message without a path",
			status.Error(codes.InvalidArgument, "batch of 2000 items exceeds the limit: 1024"),
			"", "batch of 2000 items exceeds the limit: 1024", false},
		{"only a detail of another kind: the message is parsed",
			withDetails(t, serverMessage, &errdetails.ErrorInfo{Reason: "OUT_OF_RANGE", Domain: "example"}),
			"links[0].samples[9].rtt_ms", "-5 is below the minimum 0 ms", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServer{version: "v1", before: func(context.Context, int64) error { return tc.serverErr }}
			c := newBufClient(t, f, WithTimeout(5*time.Second))
			_, err := c.PredictBandwidth(context.Background(), linkSamples(10))
			var iie *InvalidInputError
			if !errors.Is(err, ErrInvalidInput) || !errors.As(err, &iie) {
				t.Fatalf("err = %v, want an *InvalidInputError", err)
			}
			if iie.Field != tc.wantField || iie.Reason != tc.wantReason || iie.Local {
				t.Errorf("field %q reason %q local %v, want %q %q remote", iie.Field, iie.Reason, iie.Local, tc.wantField, tc.wantReason)
			}
			if want := status.Convert(tc.serverErr).Message(); iie.Message != want {
				t.Errorf("Message %q, want the server's %q", iie.Message, want)
			}
			st, ok := status.FromError(err)
			if !ok || st.Code() != codes.InvalidArgument {
				t.Fatalf("status.FromError = %v, %v", st, ok)
			}
			if got := badRequestOf(st) != nil; got != tc.wantDetail {
				t.Errorf("BadRequest in the returned error's status: %v, want %v", got, tc.wantDetail)
			}
		})
	}
}

// badRequestOf returns the status's BadRequest detail, or nil.
func badRequestOf(st *status.Status) *errdetails.BadRequest {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br
		}
	}
	return nil
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	c, err := New("127.0.0.1:1", WithInsecure(), WithTimeout(2*time.Second)) // port 1: nothing listens
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.DetectAnomaly(context.Background(), nodeMetrics())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// A CANCELLED from the server that arrives just as the per-call timeout runs out is still the server's
// refusal while the caller's own context is live: ErrOverloaded, and the fallback answers it (issue 17 saw
// such calls come back as a bare context.Canceled, no fallback).
func TestServerCancelAtThePerCallTimeoutIsOverload(t *testing.T) {
	lateCancel := func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ grpc.UnaryInvoker, _ ...grpc.CallOption) error {
		<-ctx.Done() // the per-call timeout has run out; the caller's context has not
		return status.Error(codes.Canceled, "stream terminated by RST_STREAM with error code: CANCEL")
	}
	cases := []struct {
		name         string
		opts         []Option
		wantFallback bool
	}{
		{"without fallback", nil, false},
		{"with fallback", []Option{WithFallback()}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]Option{WithTimeout(20 * time.Millisecond), WithDialOptions(grpc.WithUnaryInterceptor(lateCancel))}, tc.opts...)
			c := newBufClient(t, &fakeServer{version: "v1"}, opts...)
			r, err := c.DetectAnomaly(context.Background(), nodeMetrics())
			if tc.wantFallback {
				if err != nil || r.ModelVersion != FallbackModelVersion {
					t.Fatalf("result %+v, err %v; want the fallback's answer", r, err)
				}
				return
			}
			if !errors.Is(err, ErrOverloaded) || errors.Is(err, context.Canceled) {
				t.Fatalf("err %v: want ErrOverloaded, not context.Canceled", err)
			}
		})
	}
}

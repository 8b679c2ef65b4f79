// Error mapping: gRPC status codes from the server become the package's sentinel errors.

package dwcpinference

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestErrorMapping(t *testing.T) {
	withDetail := func() error {
		st, err := status.New(codes.InvalidArgument, "request refused").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "nodes[0].uptime_pct", Description: "must be <= 100"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}()
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
		{"BadRequest detail", withDetail,
			[]error{ErrInvalidInput}, nil, codes.InvalidArgument, "nodes[0].uptime_pct", "must be <= 100"},
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

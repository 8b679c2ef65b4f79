// WithGRPCConn: calls go over the caller's connection, which the client never closes.

package dwcpinference

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// bufConn serves f over bufconn and returns a connection the test owns, as a node would own its own.
func bufConn(t *testing.T, f *fakeServer) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	serve(t, f, lis)
	dialer := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithContextDialer(dialer),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestWithGRPCConn(t *testing.T) {
	cases := []struct {
		name      string
		failures  int64 // UNAVAILABLE answers before the fake answers
		opts      []Option
		wantCalls int64
	}{
		{"plain", 0, nil, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServer{version: "given"}
			f.before = func(_ context.Context, n int64) error {
				if n <= tc.failures {
					return status.Error(codes.Unavailable, "injected")
				}
				return nil
			}
			conn := bufConn(t, f)
			c, err := New("", append([]Option{WithGRPCConn(conn), WithTimeout(5 * time.Second)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			if r, err := c.DetectAnomaly(ctx, nodeMetrics()); err != nil || r.ModelVersion != "given" {
				t.Fatalf("DetectAnomaly = %+v, %v", r, err)
			}
			if got := f.calls.Load(); got != tc.wantCalls {
				t.Fatalf("server saw %d calls, want %d", got, tc.wantCalls)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			// The connection is the test's: still open after Close, and it still carries calls.
			if s := conn.GetState(); s == connectivity.Shutdown {
				t.Fatal("Client.Close closed a connection it did not create")
			}
			other, err := New("", WithGRPCConn(conn), WithTimeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.SelectCompression(ctx, compressionFeatures()); err != nil {
				t.Fatalf("a call on the connection after the first client closed: %v", err)
			}
		})
	}
}

// Per-RPC health over fakes: a replica reporting NOT_SERVING for one RPC gets none of that RPC's calls.

package dwcpinference

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	inferencev1 "github.com/dwcp/dwcp-inference/clients/go/gen/dwcp/inference/v1"
)

// newTCPFakeWithHealth serves f and a grpc.health.v1 service on a loopback port, with every RPC SERVING.
func newTCPFakeWithHealth(t testing.TB, f *fakeServer) (string, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	inferencev1.RegisterInferenceServiceServer(srv, f)
	h := health.NewServer()
	for _, rpc := range modelRPCs {
		h.SetServingStatus(healthServiceName(rpc), healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(srv, h)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), h
}

func TestServiceConfig(t *testing.T) {
	cases := []struct{ health, want string }{
		{"", `{"loadBalancingConfig":[{"round_robin":{}}]}`},
		{"dwcp.inference.v1.InferenceService/DetectAnomaly",
			`{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":"dwcp.inference.v1.InferenceService/DetectAnomaly"}}`},
	}
	for _, tc := range cases {
		if got := serviceConfig(tc.health, 0, 0); got != tc.want {
			t.Errorf("serviceConfig(%q) = %s, want %s", tc.health, got, tc.want)
		}
	}
}

func TestNotServingReplicaGetsNoCallsOfThatRPC(t *testing.T) {
	rpcs := allRPCs()
	for _, sick := range rpcs {
		t.Run(sick.name, func(t *testing.T) {
			fakes := []*fakeServer{{version: "healthy"}, {version: "sick"}}
			addrs := make([]string, len(fakes))
			healths := make([]*health.Server, len(fakes))
			for i, f := range fakes {
				addrs[i], healths[i] = newTCPFakeWithHealth(t, f)
			}
			// Replica "sick" lost this RPC's model: it says so for this RPC alone.
			healths[1].SetServingStatus(healthServiceName(sick.name), healthpb.HealthCheckResponse_NOT_SERVING)
			c := readyClient(t, WithInsecure(), WithTimeout(5*time.Second), WithStaticAddresses(addrs...))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			waitBothServe(t, c, rpcs, sick.name)
			for _, rc := range rpcs {
				counts := map[string]int{}
				for range 20 {
					version, err := rc.call(ctx, c)
					if err != nil {
						t.Fatalf("%s: %v", rc.name, err)
					}
					counts[version]++
				}
				want := map[string]int{"healthy": 10, "sick": 10} // round robin over both
				if rc.name == sick.name {
					want = map[string]int{"healthy": 20}
				}
				if fmt.Sprint(counts) != fmt.Sprint(want) {
					t.Errorf("%s: calls per replica %v, want %v", rc.name, counts, want)
				}
			}
		})
	}
}

// waitBothServe calls every RPC but skip until both replicas have answered it: round robin only uses
// connected replicas, and the replicas connect one at a time.
func waitBothServe(t *testing.T, c *Client, rpcs []rpcCase, skip string) {
	t.Helper()
	for _, rc := range rpcs {
		if rc.name == skip {
			continue
		}
		seen := map[string]bool{}
		for i := 0; len(seen) < 2; i++ {
			if i == 500 {
				t.Fatalf("%s: after 500 calls only %v answered", rc.name, seen)
			}
			version, err := rc.call(context.Background(), c)
			if err != nil {
				t.Fatalf("%s: %v", rc.name, err)
			}
			seen[version] = true
		}
	}
}

func TestWaitReadyNamesTheRPCNoReplicaServes(t *testing.T) {
	addr, h := newTCPFakeWithHealth(t, &fakeServer{version: "v1"})
	h.SetServingStatus(healthServiceName(rpcDetectHighLatency), healthpb.HealthCheckResponse_NOT_SERVING)
	c, err := New(addr, WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = c.WaitReady(ctx)
	if err == nil || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), rpcDetectHighLatency) ||
		strings.Contains(err.Error(), rpcDetectAnomaly) {
		t.Fatalf("WaitReady = %v, want ErrUnavailable naming DetectHighLatency alone", err)
	}
}

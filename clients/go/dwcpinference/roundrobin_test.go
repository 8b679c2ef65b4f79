// Round-robin balancing over several replicas, from a static list or a comma-separated target.

package dwcpinference

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRoundRobinAcrossReplicas(t *testing.T) {
	cases := []struct {
		name     string
		replicas int
		client   func(addrs []string) (*Client, error)
	}{
		{"WithStaticAddresses, 3 replicas", 3, func(a []string) (*Client, error) {
			return New("", WithInsecure(), WithTimeout(time.Second), WithStaticAddresses(a...))
		}},
		{"comma-separated target, 2 replicas", 2, func(a []string) (*Client, error) {
			return New(strings.Join(a, ","), WithInsecure(), WithTimeout(time.Second))
		}},
		{"target plus a static address", 2, func(a []string) (*Client, error) {
			return New(a[0], WithInsecure(), WithTimeout(time.Second), WithStaticAddresses(a[1]))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fakes := make([]*fakeServer, tc.replicas)
			addrs := make([]string, tc.replicas)
			for i := range fakes {
				fakes[i] = &fakeServer{version: fmt.Sprintf("replica-%d", i)}
				addrs[i] = newTCPFake(t, fakes[i])
			}
			c, err := tc.client(addrs)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			// Round robin only picks connected replicas: call until every replica has answered once.
			seen := map[string]bool{}
			for i := 0; len(seen) < tc.replicas; i++ {
				if i == 500 {
					t.Fatalf("after 500 calls only %d of %d replicas answered", len(seen), tc.replicas)
				}
				r, err := c.DetectAnomaly(ctx, nodeMetrics())
				if err != nil {
					t.Fatal(err)
				}
				seen[r.ModelVersion] = true
			}
			// With all replicas connected, every replica takes exactly one call in each round.
			counts := map[string]int{}
			rounds := 10
			for range rounds * tc.replicas {
				r, err := c.DetectAnomaly(ctx, nodeMetrics())
				if err != nil {
					t.Fatal(err)
				}
				counts[r.ModelVersion]++
			}
			for _, f := range fakes {
				if counts[f.version] != rounds {
					t.Fatalf("calls per replica %v, want %d each", counts, rounds)
				}
			}
		})
	}
}

func TestDNSTarget(t *testing.T) {
	f := &fakeServer{version: "dns"}
	addr := newTCPFake(t, f)
	port := addr[strings.LastIndex(addr, ":")+1:]
	c, err := New("dns:///127.0.0.1:"+port, WithInsecure(), WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.DetectAnomaly(context.Background(), nodeMetrics())
	if err != nil || r.ModelVersion != "dns" {
		t.Fatalf("got %+v, %v", r, err)
	}
}

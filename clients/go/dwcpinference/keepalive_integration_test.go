// Keepalive against the real server: an idle client pings at the shortest interval it allows, and the
// server's policy accepts the pings, so the connections stay up (no GOAWAY "too_many_pings").

package dwcpinference

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// keepalivePings is how many pings every connection must send and survive. Without the server's keepalive
// policy, gRPC core counts each idle ping sooner than 5 min after the last as a strike and closes the
// connection past two strikes: measured, the connections ended after 3 pings at 10 s.
const keepalivePings = 5

// countedConn counts the keepalive pings the client writes and notices when the connection ends.
type countedConn struct {
	net.Conn
	pings atomic.Int64
	ended atomic.Bool
}

// Write counts a PING frame (type 6, no ACK flag). The client writes each frame it flushes in one Write,
// and an idle connection writes nothing but its pings.
func (c *countedConn) Write(b []byte) (int, error) {
	if len(b) >= 9 && b[3] == 0x6 && b[4]&0x1 == 0 {
		c.pings.Add(1)
	}
	return c.Conn.Write(b)
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.ended.Store(true) // the server closed it (after a GOAWAY) or the network failed
	}
	return n, err
}

func (c *countedConn) Close() error {
	c.ended.Store(true)
	return c.Conn.Close()
}

// countingDialer dials TCP and keeps every connection it made.
type countingDialer struct {
	mu    sync.Mutex
	conns []*countedConn
}

func (d *countingDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &countedConn{Conn: conn}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conns = append(d.conns, c)
	return c, nil
}

func (d *countingDialer) dialed() []*countedConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*countedConn(nil), d.conns...)
}

// callEveryRPC makes one call of each RPC, ModelInfo included, so that every channel carries traffic.
func callEveryRPC(t *testing.T, c *Client) {
	t.Helper()
	for _, rc := range allRPCs() {
		if _, err := rc.call(context.Background(), c); err != nil {
			t.Fatalf("%s: %v", rc.name, err)
		}
	}
	if _, err := c.ModelInfo(context.Background()); err != nil {
		t.Fatalf("ModelInfo: %v", err)
	}
}

func TestLiveIdleKeepaliveGetsNoGoaway(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: idles for keepalivePings x MinKeepaliveInterval")
	}
	srv := requireLive(t)
	var dialer countingDialer
	c := liveClient(t, WithKeepalive(MinKeepaliveInterval, 5*time.Second),
		WithDialOptions(grpc.WithContextDialer(dialer.dial)))
	callEveryRPC(t, c)
	conns := dialer.dialed()
	if len(conns) != len(c.ch.all()) {
		t.Fatalf("%d connections for %d channels to one replica", len(conns), len(c.ch.all()))
	}
	start := make([]int64, len(conns))
	for i, conn := range conns {
		start[i] = conn.pings.Load()
	}

	// Idle until every connection has pinged keepalivePings times, or one has ended.
	deadline := time.Now().Add(2 * keepalivePings * MinKeepaliveInterval)
	for waiting := true; waiting && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		waiting = false
		for i, conn := range conns {
			if conn.ended.Load() {
				waiting = false
				break
			}
			if conn.pings.Load()-start[i] < keepalivePings {
				waiting = true
			}
		}
	}
	for i, conn := range conns {
		pings := conn.pings.Load() - start[i]
		if conn.ended.Load() {
			t.Errorf("connection %d ended after %d idle pings: the server refused them (GOAWAY too_many_pings)\n%s",
				i, pings, srv.logTail())
		} else if pings < keepalivePings {
			t.Errorf("connection %d sent %d pings while idle, want at least %d", i, pings, keepalivePings)
		}
	}

	// The same connections still carry calls: nothing was redialled.
	callEveryRPC(t, c)
	if n := len(dialer.dialed()); n != len(conns) {
		t.Errorf("%d connections dialled after the idle period, want the %d from before", n, len(conns))
	}
}

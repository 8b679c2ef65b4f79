// The server restarts on the same port while one Go client keeps calling: the client recovers by itself.

package dwcpinference

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLiveClientRecoversWhenTheServerRestarts(t *testing.T) {
	first := startOwnServer(t)
	port := first.addr[strings.LastIndex(first.addr, ":")+1:]
	c, err := New(first.addr, WithInsecure(), WithTimeout(2*time.Second), WithRetries(2, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	type outcome struct {
		at  time.Time
		err error
	}
	results := make(chan outcome, 10000)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // one caller, never restarted, at most ~10000 calls and 45 s
		defer close(done)
		deadline := time.Now().Add(45 * time.Second)
		for i := 0; i < cap(results) && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := c.DetectAnomaly(context.Background(), nodeMetrics())
			results <- outcome{time.Now(), err}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	time.Sleep(500 * time.Millisecond)
	if err := first.stop(); err != nil { // SIGTERM: drain, then the port is free
		t.Fatal(err)
	}
	stopped := time.Now()
	second, err := startServer("--grpc-port", port)
	if err != nil {
		close(stop)
		<-done
		t.Fatalf("restarting on port %s: %v", port, err)
	}
	t.Cleanup(func() { _ = second.stop() })
	ready := time.Now()
	t.Logf("server down for %v", ready.Sub(stopped).Round(time.Millisecond))

	// Recovered: 50 successes in a row after the restart, within 15 s of the new server being ready.
	streak, recoveredAt := 0, time.Time{}
	limit := time.After(15 * time.Second)
	for streak < 50 {
		select {
		case r := <-results:
			switch {
			case r.err == nil && r.at.After(ready):
				streak++
				if recoveredAt.IsZero() {
					recoveredAt = r.at
				}
			case r.err == nil:
			case errors.Is(r.err, ErrUnavailable) || errors.Is(r.err, ErrDeadlineExceeded):
				streak, recoveredAt = 0, time.Time{} // expected while the server is away
			default:
				t.Errorf("unexpected error kind during the restart: %v", r.err)
			}
		case <-limit:
			close(stop)
			<-done
			t.Fatalf("client did not recover within 15 s of the restart (streak %d)\n%s", streak, second.logTail())
		}
	}
	close(stop)
	<-done
	t.Logf("first success %v after the new server was ready", recoveredAt.Sub(ready).Round(time.Millisecond))
}

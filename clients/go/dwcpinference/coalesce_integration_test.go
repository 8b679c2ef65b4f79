// Coalescing against the real server: concurrent single-item callers get their own answers and errors.

package dwcpinference

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestLiveCoalescing(t *testing.T) {
	const callers, callsEach = 32, 20
	c := liveClient(t)
	var mu sync.Mutex
	largest := 0
	c.co.anomaly.observe = func(_ context.Context, _ string, items int) {
		mu.Lock()
		largest = max(largest, items)
		mu.Unlock()
	}
	call := keyedRPCs()[rpcDetectAnomaly]
	var wg sync.WaitGroup
	errs := make(chan error, callers*callsEach)
	for g := range callers {
		wg.Go(func() {
			for i := range callsEach {
				key := fmt.Sprintf("node-%d-%d", g, i)
				got, version, err := call(context.Background(), c, key)
				if err != nil || got != key || version == "" || version == FallbackModelVersion {
					errs <- fmt.Errorf("%s: got %q version %q err %v", key, got, version, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if largest < 2 {
		t.Errorf("largest batch %d items: %d concurrent callers were never coalesced", largest, callers)
	}
}

func TestLiveCoalescingInvalidItemFailsAlone(t *testing.T) {
	const callers = 16
	c := liveClient(t)
	sizes := make(chan int, 4*callers)
	c.co.bandwidth.observe = func(_ context.Context, _ string, items int) { sizes <- items }
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for round := 0; round < 4; round++ { // a few rounds, so that the bad item lands in a batch
		for i := range callers {
			wg.Go(func() {
				s := linkSamples(BandwidthWindowSamples)
				if i == callers/2 {
					s[9].ThroughputMbps = -5
				}
				_, errs[i] = c.co.bandwidth.call(context.Background(), c.cfg.timeout,
					LinkWindow{LinkID: fmt.Sprint(i), Samples: s})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if i != callers/2 {
				if err != nil {
					t.Errorf("round %d, good caller %d: %v", round, i, err)
				}
				continue
			}
			var iie *InvalidInputError
			if !errors.As(err, &iie) || iie.Local || iie.Field != "links[0].samples[9].throughput_mbps" {
				t.Errorf("round %d, bad caller: %v, want the server's refusal of links[0].samples[9].throughput_mbps", round, err)
			}
		}
	}
	close(sizes)
	largest := 0
	for n := range sizes {
		largest = max(largest, n)
	}
	t.Logf("largest bandwidth batch: %d items", largest)
}

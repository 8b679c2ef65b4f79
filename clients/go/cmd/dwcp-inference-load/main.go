// Command dwcp-inference-load drives one RPC of a dwcp-inference server through the Go client with
// single-item calls, the way DWCP nodes call it, and reports the latency each caller saw.
//
//	go run ./cmd/dwcp-inference-load -target 127.0.0.1:50051 -rpc SelectCompression -workers 64 -duration 5s
//
// Closed loop by default (each of -workers goroutines calls again as soon as it has its answer); with -rate
// the calls are scheduled open loop at that many per second over the workers, and latency is measured from
// each call's scheduled start, so a backlog shows in the tail instead of lowering the rate. -json prints
// the summary as one JSON object (bench/loadtest_client.py reads it).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"os"
	"sync"
	"time"

	"github.com/dwcp/dwcp-inference/clients/go/dwcpinference"
)

// settings are the flags of one run.
type settings struct {
	target   string        // server address (loopback only for load tests)
	rpc      string        // which RPC to call
	workers  int           // goroutines calling concurrently
	rate     float64       // calls per second, open loop; 0: closed loop
	duration time.Duration // measured time, after the warm-up
	warmup   time.Duration // calls made first and not measured
	timeout  time.Duration // the client's per-call timeout
	coalesce bool          // coalescing on (the client's default) or off
	asJSON   bool          // print the summary as JSON
}

func parseFlags() settings {
	var s settings
	flag.StringVar(&s.target, "target", "127.0.0.1:50051", "server address (host:port)")
	flag.StringVar(&s.rpc, "rpc", "SelectCompression", "RPC: PredictBandwidth, SelectCompression, DetectAnomaly or DetectHighLatency")
	flag.IntVar(&s.workers, "workers", 16, "goroutines calling concurrently")
	flag.Float64Var(&s.rate, "rate", 0, "calls per second in total, open loop; 0 runs closed loop")
	flag.DurationVar(&s.duration, "duration", 5*time.Second, "measured duration")
	flag.DurationVar(&s.warmup, "warmup", time.Second, "unmeasured warm-up before it")
	flag.DurationVar(&s.timeout, "timeout", time.Second, "per-call timeout of the client")
	flag.BoolVar(&s.coalesce, "coalesce", true, "coalesce concurrent single-item calls (the client's default)")
	flag.BoolVar(&s.asJSON, "json", false, "print the summary as one JSON object")
	flag.Parse()
	return s
}

func main() {
	s := parseFlags()
	call, ok := calls[s.rpc]
	if !ok || s.workers < 1 || s.rate < 0 || s.duration <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	opts := []dwcpinference.Option{dwcpinference.WithInsecure(), dwcpinference.WithTimeout(s.timeout)}
	if !s.coalesce {
		opts = append(opts, dwcpinference.WithoutCoalescing())
	}
	client, err := dwcpinference.New(s.target, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ready, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.WaitReady(ready); err != nil {
		log.Fatalf("%s: %v", s.target, err)
	}
	if s.warmup > 0 {
		drive(client, call, s.workers, s.rate, s.warmup)
	}
	rec := drive(client, call, s.workers, s.rate, s.duration)
	sum := rec.summary(s)
	if s.asJSON {
		if err := json.NewEncoder(os.Stdout).Encode(sum); err != nil {
			log.Fatal(err)
		}
		return
	}
	sum.print(os.Stdout, rec)
}

// drive runs workers goroutines for d, closed loop or at rate calls per second, and returns what they saw.
func drive(c *dwcpinference.Client, call callFunc, workers int, rate float64, d time.Duration) *recorder {
	ctx := context.Background()
	recs := make([]*recorder, workers)
	start := time.Now()
	end := start.Add(d)
	var schedule chan time.Time
	if rate > 0 {
		schedule = make(chan time.Time, workers)
		go func() {
			defer close(schedule)
			interval := time.Duration(float64(time.Second) / rate)
			for at := start; at.Before(end); at = at.Add(interval) {
				if wait := time.Until(at); wait > 0 {
					time.Sleep(wait)
				}
				schedule <- at
			}
		}()
	}
	var wg sync.WaitGroup
	for w := range workers {
		recs[w] = newRecorder()
		wg.Go(func() {
			r := recs[w]
			for i := 0; ; i++ {
				var at time.Time
				if schedule != nil {
					var ok bool
					if at, ok = <-schedule; !ok {
						return
					}
				} else if at = time.Now(); !at.Before(end) {
					return
				}
				err := call(ctx, c, w*1_000_003+i)
				r.add(time.Since(at), err)
			}
		})
	}
	wg.Wait()
	all := newRecorder()
	for _, r := range recs {
		all.merge(r)
	}
	all.wall = time.Since(start)
	return all
}

// Latencies and errors of a run: exact percentiles, a log-scale histogram, errors by kind.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/dwcp/dwcp-inference/clients/go/dwcpinference"
)

// recorder holds the latency of every successful call and counts the failures by kind.
type recorder struct {
	latencies []time.Duration
	errors    map[string]int
	wall      time.Duration
}

func newRecorder() *recorder { return &recorder{errors: map[string]int{}} }

func (r *recorder) add(d time.Duration, err error) {
	if err != nil {
		r.errors[errorKind(err)]++
		return
	}
	r.latencies = append(r.latencies, d)
}

func (r *recorder) merge(o *recorder) {
	r.latencies = append(r.latencies, o.latencies...)
	for k, n := range o.errors {
		r.errors[k] += n
	}
}

// errorKind names a failure by the client's sentinel errors, most specific first.
func errorKind(err error) string {
	for _, k := range []struct {
		name string
		err  error
	}{
		{"invalid_input", dwcpinference.ErrInvalidInput},
		{"overloaded", dwcpinference.ErrOverloaded},
		{"unavailable", dwcpinference.ErrUnavailable},
		{"deadline_exceeded", dwcpinference.ErrDeadlineExceeded},
		{"canceled", context.Canceled},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

// summary is one run in numbers; latencies in milliseconds.
type summary struct {
	RPC             string         `json:"rpc"`
	Workers         int            `json:"workers"`
	RatePerS        float64        `json:"rate_per_s"` // 0: closed loop
	Coalesce        bool           `json:"coalesce"`
	Calls           int            `json:"calls"` // successful calls
	Errors          map[string]int `json:"errors"`
	PredictionsPerS float64        `json:"predictions_per_s"`
	P50Ms           float64        `json:"p50_ms"`
	P90Ms           float64        `json:"p90_ms"`
	P99Ms           float64        `json:"p99_ms"`
	MaxMs           float64        `json:"max_ms"`
	DurationS       float64        `json:"duration_s"`
}

func (r *recorder) summary(s settings) summary {
	slices.Sort(r.latencies)
	q := func(p float64) float64 {
		if len(r.latencies) == 0 {
			return 0
		}
		return ms(r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))])
	}
	return summary{
		RPC: s.rpc, Workers: s.workers, RatePerS: s.rate, Coalesce: s.coalesce, Calls: len(r.latencies),
		Errors: r.errors, PredictionsPerS: float64(len(r.latencies)) / r.wall.Seconds(),
		P50Ms: q(0.50), P90Ms: q(0.90), P99Ms: q(0.99), MaxMs: q(1), DurationS: r.wall.Seconds(),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s summary) print(w io.Writer, r *recorder) {
	mode := "closed loop"
	if s.RatePerS > 0 {
		mode = fmt.Sprintf("open loop at %.0f calls/s", s.RatePerS)
	}
	fmt.Fprintf(w, "%s: %d workers, %s, coalescing %v, %.1f s\n", s.RPC, s.Workers, mode, s.Coalesce, s.DurationS)
	fmt.Fprintf(w, "  %d calls ok, %.0f predictions/s; p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		s.Calls, s.PredictionsPerS, s.P50Ms, s.P90Ms, s.P99Ms, s.MaxMs)
	for kind, n := range s.Errors {
		fmt.Fprintf(w, "  errors %s: %d\n", kind, n)
	}
	// Log-scale histogram of the latencies, sorted by summary: bucket upper bounds 0.125 ms, 0.25 ms, ...
	fmt.Fprintln(w, "  latency histogram:")
	bound := 125 * time.Microsecond
	i := 0
	for i < len(r.latencies) {
		n := 0
		for i < len(r.latencies) && r.latencies[i] <= bound {
			i++
			n++
		}
		if n > 0 {
			fmt.Fprintf(w, "    <= %8.3f ms %8d  %5.1f %%\n", ms(bound), n, 100*float64(n)/float64(len(r.latencies)))
		}
		bound *= 2
	}
}

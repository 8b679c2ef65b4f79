// Package dwcpinference is the Go client DWCP nodes use to ask the dwcp-inference service its four model
// questions: the next throughput of a link, the compression level for a chunk, whether a node looks
// anomalous, and whether a cluster's consensus latency is abnormally high.
//
// A DWCP engineer does not need the .proto file: every request and result is a plain Go struct whose
// field names carry their units (RTTMs is milliseconds, ThroughputMbps is megabits per second,
// PacketLossRatio is a fraction 0-1, UptimePct is percent 0-100). Model features stay float64 in the unit
// of their name rather than time.Duration, because the models, the server's validation ranges and
// GetModelInfo all speak those units; use [Milliseconds] to turn a time.Duration into a feature value.
// time.Duration is used for the client's own settings: timeouts, backoff and keepalive.
//
// A minimal call:
//
//	c, err := dwcpinference.New("127.0.0.1:50051", dwcpinference.WithInsecure())
//	if err != nil { ... }
//	defer c.Close()
//	p, err := c.PredictBandwidth(ctx, last10Samples)
//	fmt.Println(p.PredictedThroughputMbps, p.ModelVersion)
//
// Every call has a deadline: the caller's context deadline or the client's per-call timeout (10 ms by
// default, the service's latency budget), whichever comes first. Errors can be tested with errors.Is
// against [ErrInvalidInput], [ErrUnavailable], [ErrOverloaded] and [ErrDeadlineExceeded]; an
// [*InvalidInputError] names the offending field path. With [WithFallback] a call that the service cannot
// answer in time returns a documented heuristic instead, marked by ModelVersion [FallbackModelVersion].
package dwcpinference

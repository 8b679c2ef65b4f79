// Command dwcp-inference-example calls every RPC of a running dwcp-inference server once and prints the
// answers.
//
//	go run ./cmd/dwcp-inference-example -target 127.0.0.1:50051
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/dwcp/dwcp-inference/clients/go/dwcpinference"
)

func main() {
	target := flag.String("target", "127.0.0.1:50051", "server address: host:port, dns:///host:port or a comma-separated list")
	useTLS := flag.Bool("tls", false, "connect with TLS (system roots) instead of plaintext")
	timeout := flag.Duration("timeout", dwcpinference.DefaultTimeout, "per-call timeout")
	fallback := flag.Bool("fallback", false, "answer with the client's heuristics when the server cannot")
	metrics := flag.Bool("metrics", true, "print the metrics the client recorded (OpenTelemetry, manual reader)")
	flag.Parse()

	security := dwcpinference.WithInsecure()
	if *useTLS {
		security = dwcpinference.WithTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	opts := []dwcpinference.Option{security, dwcpinference.WithTimeout(*timeout), dwcpinference.WithRetries(2, time.Millisecond)}
	if *fallback {
		opts = append(opts, dwcpinference.WithFallback())
	}
	// The node's meter provider; here with a manual reader, printed at the end.
	reader := sdkmetric.NewManualReader()
	if *metrics {
		opts = append(opts, dwcpinference.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	}
	client, err := dwcpinference.New(*target, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx := context.Background()
	start, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.WaitReady(start); err != nil {
		if !*fallback {
			log.Fatalf("cannot reach %s: %v", *target, err)
		}
		log.Printf("cannot reach %s (%v); answers below come from the fallback heuristics", *target, err)
	}
	if err := run(ctx, client); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	if *metrics {
		if err := printMetrics(ctx, os.Stdout, reader); err != nil {
			log.Fatal(err)
		}
	}
}

func run(ctx context.Context, c *dwcpinference.Client) error {
	models, err := c.ModelInfo(ctx)
	if err != nil && !errors.Is(err, dwcpinference.ErrUnavailable) {
		return err
	}
	fmt.Println("Models served:")
	if len(models) == 0 {
		fmt.Println("  (none: the service is unavailable)")
	}
	for _, m := range models {
		fmt.Printf("  %-21s %s  %-17s created %s, %d inputs, max batch %d\n", m.Name, m.Version, m.RPC,
			m.Created.Format(time.RFC3339), len(m.Inputs), m.MaxBatchItems)
	}

	// Ten samples of a WAN link whose throughput is climbing from 900 to 990 Mbps.
	samples := make([]dwcpinference.LinkSample, dwcpinference.BandwidthWindowSamples)
	for i := range samples {
		samples[i] = dwcpinference.LinkSample{
			RTTMs: 42, JitterMs: 1.5, ThroughputMbps: 900 + 10*float64(i), PacketLossRatio: 0.001,
			LinkType: dwcpinference.LinkTypeWAN, NetworkTier: dwcpinference.NetworkTier2, CongestionWindowSegments: 3200,
		}
	}
	bw, err := c.PredictBandwidth(ctx, samples)
	if err != nil {
		return err
	}
	coverage := fmt.Sprintf("%.0f%% interval", 100*bw.IntervalLevel)
	if bw.IsFallback() {
		coverage = "min..max of the samples"
	}
	fmt.Printf("\nPredictBandwidth (wan link, 900->990 Mbps):\n  next %.1f Mbps, %s %.1f..%.1f Mbps, confidence %.2f  [%s %s]\n",
		bw.PredictedThroughputMbps, coverage, bw.LowerBoundMbps, bw.UpperBoundMbps, bw.Confidence,
		bw.ModelName, bw.ModelVersion)

	cc, err := c.SelectCompression(ctx, dwcpinference.CompressionFeatures{
		LinkID: "fra-iad", ThroughputMbps: 900, RTTMs: 42, LinkType: dwcpinference.LinkTypeWAN,
		HDECompressionRatio: 2.5, HDEDeltaHitRatio: 0.3, AMSTTransferRateMbps: 850,
	})
	if err != nil {
		return err
	}
	fmt.Printf("\nSelectCompression (link %s):\n  level %d with probability %.2f  [%s %s]\n",
		cc.LinkID, cc.Level, cc.Probability, cc.ModelName, cc.ModelVersion)

	// Concurrent single-item calls of one RPC leave as batch RPCs (coalescing, on by default): see
	// dwcp.client.coalesced_batch.items in the metrics below.
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = c.SelectCompression(ctx, dwcpinference.CompressionFeatures{
				LinkID: fmt.Sprintf("link-%d", i), ThroughputMbps: 900, RTTMs: 42, LinkType: dwcpinference.LinkTypeWAN,
				HDECompressionRatio: 2.5, HDEDeltaHitRatio: 0.3, AMSTTransferRateMbps: 850,
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Printf("\nSelectCompression: %d concurrent single-item calls answered\n", len(errs))

	nodes, err := c.DetectAnomalyBatch(ctx, []dwcpinference.NodeMetrics{
		{NodeID: "node-healthy", UptimePct: 99.9, FailureRatio: 0.001, PacketLossRatio: 0.0005, RetransmitsCount: 2, ErrorBudgetBurnRate: 0.1, RTTMs: 40},
		{NodeID: "node-flapping", UptimePct: 71, FailureRatio: 0.2, PacketLossRatio: 0.08, RetransmitsCount: 900, ErrorBudgetBurnRate: 14, RTTMs: 380},
	})
	if err != nil {
		return err
	}
	fmt.Println("\nDetectAnomaly (batch of 2):")
	for _, n := range nodes {
		fmt.Printf("  %-13s score %.3f, threshold %.3f, anomalous %-5v  [%s %s]\n",
			n.NodeID, n.AnomalyScore, n.Threshold, n.IsAnomaly, n.ModelName, n.ModelVersion)
	}

	steady := make([]float64, dwcpinference.LatencyWindowSamples)
	for i := range steady {
		steady[i] = 120 + 3*float64(i%4)
	}
	spiking := slices.Clone(steady)
	for i := 14; i < len(spiking); i++ {
		spiking[i] = 2500 + 400*float64(i-14)
	}
	windows, err := c.DetectHighLatencyBatch(ctx, []dwcpinference.LatencyWindow{
		{ClusterID: "steady", ConsensusLatenciesMs: steady}, {ClusterID: "spiking", ConsensusLatenciesMs: spiking},
	})
	if err != nil {
		return err
	}
	fmt.Println("\nDetectHighLatency (batch of 2, 20 consensus latencies each):")
	for _, w := range windows {
		fmt.Printf("  %-8s reconstruction error %.4f, threshold %.4f, high latency %-5v  [%s %s]\n",
			w.ClusterID, w.ReconstructionError, w.Threshold, w.IsHighLatency, w.ModelName, w.ModelVersion)
	}

	// Invalid input is refused by the server with the field path and the reason (throughput: the feature
	// every bandwidth version reads; fields a version does not read are ignored).
	bad := slices.Clone(samples)
	bad[9].ThroughputMbps = -5
	_, err = c.PredictBandwidth(ctx, bad)
	var invalid *dwcpinference.InvalidInputError
	if errors.As(err, &invalid) {
		fmt.Printf("\nInvalid input (throughput_mbps -5 in the last sample):\n  errors.Is(err, ErrInvalidInput) = %v\n  field %q, reason %q\n",
			errors.Is(err, dwcpinference.ErrInvalidInput), invalid.Field, strings.TrimSpace(invalid.Reason))
	} else if err != nil {
		return err
	}
	return nil
}

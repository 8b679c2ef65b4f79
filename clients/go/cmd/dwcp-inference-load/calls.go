// The single-item calls of the four RPCs, with plausible inputs that vary from call to call.

package main

import (
	"context"
	"fmt"

	"github.com/dwcp/dwcp-inference/clients/go/dwcpinference"
)

// callFunc makes call number n of one RPC.
type callFunc func(ctx context.Context, c *dwcpinference.Client, n int) error

var calls = map[string]callFunc{
	"PredictBandwidth": func(ctx context.Context, c *dwcpinference.Client, n int) error {
		samples := make([]dwcpinference.LinkSample, dwcpinference.BandwidthWindowSamples)
		base := 400 + float64(n%500)
		for i := range samples {
			samples[i] = dwcpinference.LinkSample{
				RTTMs: 42, JitterMs: 1.5, ThroughputMbps: base + 5*float64(i), PacketLossRatio: 0.001,
				LinkType: dwcpinference.LinkTypeWAN, NetworkTier: dwcpinference.NetworkTier2, CongestionWindowSegments: 3200,
			}
		}
		_, err := c.PredictBandwidth(ctx, samples)
		return err
	},
	"SelectCompression": func(ctx context.Context, c *dwcpinference.Client, n int) error {
		_, err := c.SelectCompression(ctx, dwcpinference.CompressionFeatures{
			LinkID: fmt.Sprint(n % 1000), ThroughputMbps: 100 + float64(n%900), RTTMs: 5 + float64(n%80),
			LinkType: dwcpinference.LinkTypeWAN, HDECompressionRatio: 2.5, HDEDeltaHitRatio: 0.3, AMSTTransferRateMbps: 850,
		})
		return err
	},
	"DetectAnomaly": func(ctx context.Context, c *dwcpinference.Client, n int) error {
		_, err := c.DetectAnomaly(ctx, dwcpinference.NodeMetrics{
			NodeID: fmt.Sprint(n % 1000), UptimePct: 99.9, FailureRatio: 0.001 * float64(n%10), PacketLossRatio: 0.0005,
			RetransmitsCount: float64(n % 50), ErrorBudgetBurnRate: 0.4, RTTMs: 42,
		})
		return err
	},
	"DetectHighLatency": func(ctx context.Context, c *dwcpinference.Client, n int) error {
		l := make([]float64, dwcpinference.LatencyWindowSamples)
		for i := range l {
			l[i] = 100 + float64((n+i)%40)
		}
		_, err := c.DetectHighLatency(ctx, l)
		return err
	},
}

// The client's gRPC channels: one per RPC, each balanced round-robin over the replicas that serve that RPC.

package dwcpinference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	_ "google.golang.org/grpc/health" // client-side health checking (healthCheckConfig) is off without it
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	inferencev1 "github.com/dwcp/dwcp-inference/clients/go/gen/dwcp/inference/v1"
)

// The RPCs as the server names them in its metrics and in its grpc.health.v1 entries.
const (
	rpcPredictBandwidth  = "PredictBandwidth"
	rpcSelectCompression = "SelectCompression"
	rpcDetectAnomaly     = "DetectAnomaly"
	rpcDetectHighLatency = "DetectHighLatency"
	rpcGetModelInfo      = "GetModelInfo"
)

// modelRPCs are the RPCs answered by one model each; each gets a channel health-checked on that model.
var modelRPCs = []string{rpcPredictBandwidth, rpcSelectCompression, rpcDetectAnomaly, rpcDetectHighLatency}

// healthServiceName is the grpc.health.v1 entry the server keeps for one RPC: SERVING while that RPC's
// model is loaded, NOT_SERVING without it and from the moment the replica starts draining.
func healthServiceName(rpc string) string {
	return inferencev1.InferenceService_ServiceDesc.ServiceName + "/" + rpc
}

// serviceConfig is the default service config of one channel. round_robin makes every resolved address a
// subchannel and spreads calls over them one by one (gRPC's default pins every call to the first address).
// With a health service name, gRPC watches that entry on every replica and round_robin picks only the
// replicas reporting SERVING; a replica without the health service (UNIMPLEMENTED) counts as serving. With
// retries > 0, grpc-go retries UNAVAILABLE by the retry policy, throttled (retry.go).
func serviceConfig(healthService string, retries int, backoff time.Duration) string {
	type healthCheck struct {
		ServiceName string `json:"serviceName"`
	}
	config := struct {
		LoadBalancing []map[string]struct{} `json:"loadBalancingConfig"`
		HealthCheck   *healthCheck          `json:"healthCheckConfig,omitempty"`
		MethodConfig  []methodConfig        `json:"methodConfig,omitempty"`
		Throttling    *retryThrottling      `json:"retryThrottling,omitempty"`
	}{LoadBalancing: []map[string]struct{}{{"round_robin": {}}}}
	if healthService != "" {
		config.HealthCheck = &healthCheck{ServiceName: healthService}
	}
	if retries > 0 {
		service := inferencev1.InferenceService_ServiceDesc.ServiceName
		config.MethodConfig = []methodConfig{newRetryPolicy(service, retries, backoff)}
		config.Throttling = &retryThrottling{MaxTokens: retryMaxTokens, TokenRatio: retryTokenRatio}
	}
	out, err := json.Marshal(config)
	if err != nil {
		panic(err) // a fixed struct of strings and numbers always marshals
	}
	return string(out)
}

// channel is where one RPC's calls go.
type channel struct {
	rpc  string
	conn *grpc.ClientConn
	stub inferencev1.InferenceServiceClient
}

// channels are the client's five channels, one per RPC.
type channels struct {
	bandwidth, compression, anomaly, latency, info channel
}

func newChannels() channels {
	return channels{
		bandwidth:   channel{rpc: rpcPredictBandwidth},
		compression: channel{rpc: rpcSelectCompression},
		anomaly:     channel{rpc: rpcDetectAnomaly},
		latency:     channel{rpc: rpcDetectHighLatency},
		info:        channel{rpc: rpcGetModelInfo},
	}
}

// models are the channels of the four model RPCs.
func (cs *channels) models() []*channel {
	return []*channel{&cs.bandwidth, &cs.compression, &cs.anomaly, &cs.latency}
}

// all are the five channels.
func (cs *channels) all() []*channel { return append(cs.models(), &cs.info) }

// useConn sends every RPC over one connection.
func (cs *channels) useConn(conn *grpc.ClientConn) {
	for _, ch := range cs.all() {
		ch.conn, ch.stub = conn, inferencev1.NewInferenceServiceClient(conn)
	}
}

// replicaTarget turns New's target and WithStaticAddresses into one gRPC target. A list of replicas gets a
// fresh resolver each time it is asked, since a resolver serves one channel.
func replicaTarget(target string, static []string) (string, func() grpc.DialOption, error) {
	addrs := append([]string(nil), static...)
	if strings.Contains(target, ",") || len(addrs) > 0 {
		for _, a := range strings.Split(target, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		for _, a := range addrs {
			if strings.Contains(a, "://") {
				return "", nil, fmt.Errorf("dwcpinference: %q in a replica list: list plain host:port addresses, or give one dns:/// target", a)
			}
		}
	}
	if len(addrs) == 0 {
		if target == "" {
			return "", nil, errors.New("dwcpinference: empty target and no WithStaticAddresses")
		}
		return target, nil, nil
	}
	const scheme = "dwcpinference-static"
	resolverFor := func() grpc.DialOption {
		// A resolver private to one channel (not registered globally) that reports the fixed list.
		r := manual.NewBuilderWithScheme(scheme)
		endpoints := make([]resolver.Endpoint, len(addrs))
		for i, a := range addrs {
			endpoints[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}}
		}
		r.InitialState(resolver.State{Endpoints: endpoints})
		return grpc.WithResolvers(r)
	}
	return scheme + ":///replicas", resolverFor, nil
}

// dialChannels creates one channel per RPC to the same replicas and starts connecting them. The model
// RPCs' channels are health-checked on their RPC's entry, so a replica missing one model gets no calls of
// that RPC and still gets the others; GetModelInfo goes to any connected replica. Each channel's service
// config carries the retry policy when retries > 0.
func dialChannels(target string, resolverFor func() grpc.DialOption, dial []grpc.DialOption,
	retries int, backoff time.Duration) (channels, []*grpc.ClientConn, error) {
	cs := newChannels()
	var opened []*grpc.ClientConn
	for _, ch := range cs.all() {
		health := ""
		if ch.rpc != rpcGetModelInfo {
			health = healthServiceName(ch.rpc)
		}
		opts := []grpc.DialOption{grpc.WithDefaultServiceConfig(serviceConfig(health, retries, backoff))}
		if retries > 0 {
			opts = append(opts, grpc.WithMaxCallAttempts(retries+1)) // grpc-go caps attempts at 5 otherwise
		}
		if resolverFor != nil {
			opts = append(opts, resolverFor())
		}
		conn, err := grpc.NewClient(target, append(opts, dial...)...)
		if err != nil {
			for _, c := range opened {
				_ = c.Close()
			}
			return channels{}, nil, fmt.Errorf("dwcpinference: %w", err)
		}
		conn.Connect()
		ch.conn, ch.stub = conn, inferencev1.NewInferenceServiceClient(conn)
		opened = append(opened, conn)
	}
	return cs, opened, nil
}

// waitReady blocks until conn is READY; with health checking that means a replica serves the RPC.
func waitReady(ctx context.Context, conn *grpc.ClientConn) (connectivity.State, bool) {
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			return s, true
		}
		if s == connectivity.Idle {
			conn.Connect()
		}
		if !conn.WaitForStateChange(ctx, s) {
			return s, false
		}
	}
}

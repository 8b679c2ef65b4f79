// Two real replicas, one without the consensus_latency model: every DetectHighLatency call goes to the
// replica that has it and succeeds, while the other RPCs are still balanced over both. Skipped only when
// DWCP_SKIP_INTEGRATION=1.

package dwcpinference

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const healthCallsPerRPC = 40

func TestLiveReplicaMissingAModelGetsNoCallsOfIt(t *testing.T) {
	requireIntegration(t)
	full := testModelDir(t)
	partial := filepath.Join(t.TempDir(), "models")
	for _, name := range servedModels {
		if name == ModelConsensusLatency {
			continue
		}
		if err := os.CopyFS(filepath.Join(partial, name), os.DirFS(filepath.Join(full, name))); err != nil {
			t.Fatal(err)
		}
	}
	replicas := startReplicasOver(t, full, partial)
	whole, lacking := replicas[0], replicas[1]
	missing := rpcDetectHighLatency // the RPC of consensus_latency

	// No retries: a call sent to the replica without the model fails UNAVAILABLE, and the test must see it.
	c := readyClient(t, WithInsecure(), WithStaticAddresses(whole.addr, lacking.addr), WithTimeout(5*time.Second))
	rpcs := allRPCs()
	callAll := func(n int) {
		t.Helper()
		for _, rc := range rpcs {
			for i := range n {
				if _, err := rc.call(context.Background(), c); err != nil {
					t.Fatalf("%s call %d: %v", rc.name, i, err)
				}
			}
		}
	}
	// Round robin only uses replicas that are connected and have answered their health watch: warm up
	// until both replicas have answered every RPC but the missing one.
	for round := 0; ; round++ {
		if round == 50 {
			t.Fatal("after 50 warm-up rounds the replicas still do not both answer every RPC")
		}
		callAll(4)
		w, l := whole.rpcCounts(t), lacking.rpcCounts(t)
		both := true
		for _, rc := range rpcs {
			both = both && w[rc.name] > 0 && (rc.name == missing || l[rc.name] > 0)
		}
		if both {
			break
		}
	}

	before := []map[string]int{whole.rpcCounts(t), lacking.rpcCounts(t)}
	callAll(healthCallsPerRPC) // every call must succeed
	after := []map[string]int{whole.rpcCounts(t), lacking.rpcCounts(t)}
	for _, rc := range rpcs {
		got := []int{after[0][rc.name] - before[0][rc.name], after[1][rc.name] - before[1][rc.name]}
		t.Logf("%s: %d calls to the replica with every model, %d to the one without %s", rc.name, got[0], got[1],
			ModelConsensusLatency)
		if rc.name == missing {
			if got[1] != 0 || got[0] != healthCallsPerRPC {
				t.Errorf("%s: calls per replica %v, want all %d on the replica with its model", rc.name, got,
					healthCallsPerRPC)
			}
			continue
		}
		// Round robin over two ready replicas alternates; allow a little for a reconnect.
		if min(got[0], got[1]) < 2*healthCallsPerRPC/5 {
			t.Errorf("%s: calls per replica %v, want both to take at least 40 %% of %d", rc.name, got,
				healthCallsPerRPC)
		}
	}
}

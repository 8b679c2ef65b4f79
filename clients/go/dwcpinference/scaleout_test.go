// Scale-out on one machine: three real server processes behind one round-robin client with retries; one
// replica is SIGKILLed mid-load. Every call must still succeed, and the replicas' own metrics must show that
// the load was spread across them. Skipped only when DWCP_SKIP_INTEGRATION=1.

package dwcpinference

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

const (
	scaleoutReplicas   = 3
	scaleoutCallsPhase = 1500 // calls before the kill phase, and again in it (3,000 in all)
	scaleoutWorkers    = 8    // concurrent callers
	scaleoutKillAfter  = 300  // calls of the second phase that finish before the SIGKILL
	// A replica's fair share is 1/3 of the calls; round robin over loopback gives almost exactly that.
	scaleoutMinShare = 0.25
)

// replica is one `python -m server` process of the scale-out test, with its own ports and ready file.
type replica struct {
	*liveServer
	metricsPort int
}

// startReplicas starts n servers over the same model directory in parallel and waits until all are ready.
func startReplicas(t *testing.T, n int) []*replica {
	t.Helper()
	models := testModelDir(t)
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = models
	}
	return startReplicasOver(t, dirs...)
}

// testModelDir is the repository's models/ when it holds all four models, else tiny test models built
// for this test.
func testModelDir(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	models := filepath.Join(root, "models")
	if !hasAllModels(models) {
		models = filepath.Join(t.TempDir(), "models")
		if out, err := runIn(root, pythonPath(root), "-m", "bench.tiny_models", models); err != nil {
			t.Fatalf("building test models: %v\n%s", err, out)
		}
	}
	return models
}

// pythonPath is the interpreter the live servers run on.
func pythonPath(root string) string {
	if python := os.Getenv(envPython); python != "" {
		return python
	}
	return filepath.Join(root, ".venv", "bin", "python")
}

// startReplicasOver starts one server per model directory in parallel and waits until all are ready.
func startReplicasOver(t *testing.T, modelDirs ...string) []*replica {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	python := pythonPath(root)
	replicas := make([]*replica, len(modelDirs))
	for i, models := range modelDirs {
		tmp := t.TempDir()
		s := &liveServer{tmpDir: tmp, logPath: filepath.Join(tmp, "server.log"), models: models}
		logFile, err := os.Create(s.logPath)
		if err != nil {
			t.Fatal(err)
		}
		s.cmd = exec.Command(python, "-m", "server", "--host", "127.0.0.1", "--grpc-port", "0", "--metrics-port", "0",
			"--model-dir", models, "--ready-file", filepath.Join(tmp, "ready.json"), "--reload-interval-s", "0")
		s.cmd.Dir, s.cmd.Stdout, s.cmd.Stderr = root, logFile, logFile
		setParentDeathSignal(s.cmd)
		err = s.cmd.Start()
		_ = logFile.Close() // the child holds its own descriptor
		if err != nil {
			t.Fatalf("starting replica %d: %v", i, err)
		}
		s.exited = make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(s.exited) }()
		replicas[i] = &replica{liveServer: s}
		t.Cleanup(func() { replicas[i].shutdown(t) })
	}
	for i, r := range replicas {
		ready := filepath.Join(r.tmpDir, "ready.json")
		if _, err := r.waitReady(ready); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		data, err := os.ReadFile(ready)
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			GRPCPort    int `json:"grpc_port"`
			MetricsPort int `json:"metrics_port"`
		}
		if err := json.Unmarshal(data, &info); err != nil || info.MetricsPort == 0 {
			t.Fatalf("replica %d ready file %q: %v", i, data, err)
		}
		r.addr, r.metricsPort = fmt.Sprintf("127.0.0.1:%d", info.GRPCPort), info.MetricsPort
	}
	return replicas
}

// shutdown drains a live replica with SIGTERM (stop also removes its own t.TempDir); a killed one is only reaped.
func (r *replica) shutdown(t *testing.T) {
	select {
	case <-r.exited:
		return
	default:
	}
	if err := r.stop(); err != nil {
		t.Errorf("replica %s: %v", r.addr, err)
	}
}

// rpcCount scrapes the replica's /metrics and sums dwcp_inference_rpc_duration_seconds_count over methods and codes.
func (r *replica) rpcCount(t *testing.T) int {
	t.Helper()
	total := 0
	for _, n := range r.rpcCounts(t) {
		total += n
	}
	return total
}

// rpcCounts scrapes the replica's /metrics: dwcp_inference_rpc_duration_seconds_count per method, summed over codes.
func (r *replica) rpcCounts(t *testing.T) map[string]int {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.metricsPort))
	if err != nil {
		t.Fatalf("scraping %s: %v", r.addr, err)
	}
	defer resp.Body.Close()
	counts := map[string]float64{}
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		line := lines.Text()
		if !strings.HasPrefix(line, "dwcp_inference_rpc_duration_seconds_count{") {
			continue
		}
		value, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		_, method, ok := strings.Cut(line, `method="`)
		method, _, _ = strings.Cut(method, `"`)
		if !ok {
			t.Fatalf("metrics line %q has no method label", line)
		}
		counts[method] += value
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int, len(counts))
	for m, v := range counts {
		out[m] = int(v)
	}
	return out
}

// drive makes calls from scaleoutWorkers goroutines until `calls` have finished, alternating two RPCs, and
// runs onProgress once after `at` calls have finished. It returns the calls that failed.
func drive(c *Client, calls, at int, onProgress func()) []error {
	var next, done atomic.Int64
	var once sync.Once
	var mu sync.Mutex
	var failed []error
	var wg sync.WaitGroup
	for range scaleoutWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(calls); i = next.Add(1) {
				var err error
				if i%2 == 0 {
					_, err = c.DetectAnomaly(context.Background(), nodeMetrics())
				} else {
					_, err = c.SelectCompression(context.Background(), compressionFeatures())
				}
				if err != nil {
					mu.Lock()
					failed = append(failed, fmt.Errorf("call %d: %w", i, err))
					mu.Unlock()
				}
				if done.Add(1) == int64(at) && onProgress != nil {
					once.Do(onProgress)
				}
			}
		}()
	}
	wg.Wait()
	return failed
}

func TestScaleOutThreeReplicasSurviveAKill(t *testing.T) {
	requireIntegration(t)
	replicas := startReplicas(t, scaleoutReplicas)
	addrs := make([]string, len(replicas))
	for i, r := range replicas {
		addrs[i] = r.addr
	}

	// Counts every attempt that ends UNAVAILABLE: grpc-go retries inside the call, and a stats handler sees
	// each attempt (an interceptor would see only the call).
	unavailable := &attemptCounter{code: codes.Unavailable}
	// Without coalescing: the shares below count RPCs, one per call.
	c := readyClient(t, WithInsecure(), WithStaticAddresses(addrs...), WithTimeout(5*time.Second), WithoutCoalescing(),
		WithRetries(6, 10*time.Millisecond), WithDialOptions(grpc.WithStatsHandler(unavailable)))

	// Phase 1: all three replicas up. Round robin uses only connected replicas, so warm up first.
	if failed := drive(c, 60, 0, nil); len(failed) > 0 {
		t.Fatalf("warm-up: %d calls failed, first: %v", len(failed), failed[0])
	}
	before := make([]int, len(replicas))
	for i, r := range replicas {
		before[i] = r.rpcCount(t)
	}
	if failed := drive(c, scaleoutCallsPhase, 0, nil); len(failed) > 0 {
		t.Fatalf("phase 1: %d of %d calls failed, first: %v", len(failed), scaleoutCallsPhase, failed[0])
	}
	mid := make([]int, len(replicas))
	for i, r := range replicas {
		mid[i] = r.rpcCount(t)
		share := float64(mid[i]-before[i]) / scaleoutCallsPhase
		t.Logf("phase 1: replica %d (%s) served %d of %d calls (%.0f %%)", i, r.addr, mid[i]-before[i],
			scaleoutCallsPhase, 100*share)
		if share < scaleoutMinShare {
			t.Errorf("replica %d served %.0f %% of the calls, want at least %.0f %% (fair share 33 %%)",
				i, 100*share, 100*scaleoutMinShare)
		}
	}

	// Phase 2: SIGKILL replica 0 after scaleoutKillAfter calls; every call must still succeed.
	victim := replicas[0]
	var killedAt time.Time
	failed := drive(c, scaleoutCallsPhase, scaleoutKillAfter, func() {
		killedAt = time.Now()
		if err := victim.cmd.Process.Kill(); err != nil {
			t.Errorf("SIGKILL replica 0: %v", err)
		}
	})
	select {
	case <-victim.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("replica 0 still running 10 s after SIGKILL")
	}
	if killedAt.IsZero() {
		t.Fatal("replica 0 was never killed")
	}
	if ws := victim.cmd.ProcessState.String(); !strings.Contains(ws, "killed") {
		t.Errorf("replica 0 ended with %q, want killed", ws)
	}
	for _, err := range failed[:min(len(failed), 5)] {
		t.Error(err)
	}
	if len(failed) > 0 {
		t.Fatalf("phase 2: %d of %d calls failed after killing one of %d replicas", len(failed), scaleoutCallsPhase,
			scaleoutReplicas)
	}
	// The survivors took the rest: at least every call that finished after the kill, minus those in flight.
	survived := 0
	for i, r := range replicas[1:] {
		got := r.rpcCount(t) - mid[i+1]
		survived += got
		t.Logf("phase 2: replica %d (%s) served %d calls", i+1, r.addr, got)
	}
	if want := scaleoutCallsPhase - scaleoutKillAfter - scaleoutWorkers; survived < want {
		t.Errorf("survivors served %d calls in phase 2, want at least %d", survived, want)
	}
	t.Logf("phase 2: all %d calls succeeded; %d attempts ended UNAVAILABLE and were retried", scaleoutCallsPhase,
		unavailable.n.Load())
	// With 8 callers over 3 replicas some calls are in flight on the victim when it dies (4-8 in practice).
	if unavailable.n.Load() == 0 {
		t.Error("no attempt ended UNAVAILABLE: the kill was not felt, so the retries were not exercised")
	}
}

// attemptCounter is a stats.Handler counting the attempts (retries included) that end with code.
type attemptCounter struct {
	code codes.Code
	n    atomic.Int64
}

func (a *attemptCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (a *attemptCounter) HandleRPC(_ context.Context, s stats.RPCStats) {
	if end, ok := s.(*stats.End); ok && status.Code(end.Error) == a.code {
		a.n.Add(1)
	}
}
func (a *attemptCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (a *attemptCounter) HandleConn(context.Context, stats.ConnStats) {}

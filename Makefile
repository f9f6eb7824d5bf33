# Warden — make targets. `make` alone lists them.
SHELL := /bin/bash
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false

GO          ?= go
GOBIN_DIR   := $(shell $(GO) env GOPATH)/bin
# The Temporal CLI (dev server + Web UI) is built once per machine, outside the
# clone, so fresh clones (and CI) reuse it. Override with WARDEN_TEMPORAL_CLI.
TEMPORAL_CLI_VERSION := v1.5.1
TEMPORAL_CLI ?= $(or $(WARDEN_TEMPORAL_CLI),$(GOBIN_DIR)/temporal)
export WARDEN_TEMPORAL_CLI := $(TEMPORAL_CLI)
TEST_TIMEOUT ?= 30m

.DEFAULT_GOAL := help
.PHONY: help deps dev test lint bench chaos build temporal-cli

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build ./bin/warden and its sandbox helpers (warden-sandbox-init, warden-tools)
	$(GO) build -o bin/warden ./cmd/warden
	$(GO) build -o bin/warden-sandbox-init ./sandbox/cmd/warden-sandbox-init
	$(GO) build -o bin/warden-tools ./tools/cmd/warden-tools

temporal-cli: ## Build the Temporal CLI v1.5.1 once per machine (~13 min cold, progress every 30 s)
	@if [ -x "$(TEMPORAL_CLI)" ] && "$(TEMPORAL_CLI)" --version 2>/dev/null | grep -q "Server 1.29.1"; then \
		echo "deps: Temporal CLI: $(TEMPORAL_CLI) ($$("$(TEMPORAL_CLI)" --version))"; \
	else \
		echo "deps: Temporal CLI: building $(TEMPORAL_CLI_VERSION) (dev server + Web UI) into $(TEMPORAL_CLI)"; \
		echo "deps: Temporal CLI: about 13 minutes on 2 cores, once per machine (set WARDEN_TEMPORAL_CLI to reuse a binary)"; \
		mkdir -p "$(dir $(TEMPORAL_CLI))"; \
		start=$$(date +%s); \
		( while sleep 30; do echo "deps: Temporal CLI: still building, $$(( ($$(date +%s) - start) / 60 )) min $$(( ($$(date +%s) - start) % 60 )) s so far (~13 min total)"; done ) & ticker=$$!; \
		GOBIN="$(dir $(TEMPORAL_CLI))" $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION); rc=$$?; \
		kill $$ticker 2>/dev/null; wait $$ticker 2>/dev/null; \
		if [ $$rc != 0 ]; then echo "deps: Temporal CLI: go install failed (exit $$rc)"; exit $$rc; fi; \
		if [ "$(notdir $(TEMPORAL_CLI))" != temporal ]; then mv "$(dir $(TEMPORAL_CLI))temporal" "$(TEMPORAL_CLI)"; fi; \
		echo "deps: Temporal CLI: built in $$(( $$(date +%s) - start )) s: $(TEMPORAL_CLI)"; \
	fi

deps: ## Install or check what the tests need: Chromium, PostgreSQL on 127.0.0.1:5432, Go modules, the Temporal CLI
	@scripts/deps.sh
	@$(MAKE) --no-print-directory temporal-cli

# DEV_ARGS: extra `warden dev` flags, e.g. DEV_ARGS="--port 7243 --ui-port 8243".
dev: temporal-cli build ## Run the local stack: dev server + Web UI, worker, demo run awaiting approval
	./bin/warden dev $(DEV_ARGS)

test: deps ## Run every test (real dev server, real PostgreSQL on 127.0.0.1:5432)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

chaos: deps ## Long chaos runs: worker SIGKILLs, audit Postgres and Temporal restarts, model faults (results go to RELIABILITY.md)
	WARDEN_CHAOS_RUNS=$(or $(RUNS),100) WARDEN_CHAOS_KILLS=$(or $(KILLS),30) $(GO) test -count=1 -v -timeout 60m -run TestWorkerKilledAtRandom ./chaos/
	WARDEN_CHAOS_PG_RUNS=60 WARDEN_CHAOS_PG_RESTARTS=10 WARDEN_CHAOS_PG_GAP_MS=500 WARDEN_CHAOS_PG_DOWN_MS=2000 \
		$(GO) test -count=1 -v -timeout 30m -run TestPostgresRestartedMidRun ./chaos/
	WARDEN_CHAOS_TEMPORAL_RUNS=40 WARDEN_CHAOS_TEMPORAL_RESTARTS=8 WARDEN_CHAOS_TEMPORAL_DOWN_MS=3000 \
		$(GO) test -count=1 -v -timeout 30m -run TestTemporalRestartedMidRun ./chaos/
	WARDEN_CHAOS_MODEL_RUNS=100 WARDEN_CHAOS_MODEL_PERMANENT_RUNS=3 WARDEN_CHAOS_MODEL_STUCK_RUNS=2 \
		$(GO) test -count=1 -v -timeout 30m -run TestModelFaultsUnderLoad ./chaos/

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: temporal-cli build ## Micro-benchmarks, `warden bench` (governed vs ungoverned vs bare Temporal loop), then 10,000 parked runs (~20 min)
	$(GO) test -run '^$$' -bench . -benchmem ./...
	./bin/warden bench --runs $(or $(RUNS),20) --steps $(or $(STEPS),10) --rounds $(or $(ROUNDS),3)
	./bin/warden bench parked --runs $(or $(PARKED),10000) --cache-size $(or $(CACHE),2000)

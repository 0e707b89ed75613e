# weft — build, test and benchmark targets. See README.md.
GO      ?= go
BIN     := bin/weft
PKGS    := ./...
# Unit and integration tests: the whole suite, as CI runs it.
TESTFLAGS ?= -count=1 -timeout 20m
# The revision weft version reports when the toolchain stamps none (-buildvcs=false).
REVISION := $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X github.com/weftgrid/weft/cmd/weft/internal/version.revision=$(REVISION)

.PHONY: all build test race lint bench chaos fuzz demo clean install

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/weft

install:
	$(GO) install -ldflags '$(LDFLAGS)' ./cmd/weft

# vet + the whole suite (the command README and .ci/run use).
test: build
	$(GO) vet $(PKGS)
	WEFT_BIN=$(CURDIR)/$(BIN) $(GO) test $(TESTFLAGS) $(PKGS)

race: build
	WEFT_BIN=$(CURDIR)/$(BIN) $(GO) test -race $(TESTFLAGS) $(PKGS)

lint:
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

# Benchmarks: Go benchmarks plus the grid harness; prints medians and ratios.
bench: build
	WEFT_BIN=$(CURDIR)/$(BIN) $(GO) run ./test/benchharness -out bench-results.json -md bench-results.md

# The chaos suite (root, iproute2, nftables): a grid in network namespaces
# under a fault schedule, then its checks; prints a summary whose last line
# is JSON, and exits non-zero on any violation. See docs/market-ops.md.
CHAOS_OUT := $(CURDIR)/chaos-result.txt
CHAOS_LOGS := $(CURDIR)/chaos-logs
chaos: build
	@$(GO) test -c -o bin/weft-test ./test/
	@rm -rf $(CHAOS_OUT) $(CHAOS_LOGS); cd test && WEFT_CHAOS=full WEFT_CHAOS_OUT=$(CHAOS_OUT) WEFT_CHAOS_LOGS=$(CHAOS_LOGS) WEFT_BIN=$(CURDIR)/$(BIN) \
		../bin/weft-test -test.run '^TestChaos$$' -test.count=1 -test.timeout 10m >$(CURDIR)/chaos.log 2>&1; \
		rc=$$?; if [ -s $(CHAOS_OUT) ]; then cat $(CHAOS_OUT); else tail -40 $(CURDIR)/chaos.log; \
		echo '{"ok": false, "copies_ok": false, "roots_equal": false, "audit_ok": false, "double_billed": 0, "unbilled": 0, "crashes": 0, "replace_p50_ms": 0, "replace_max_ms": 0, "billing_complete_pct": 0, "slices_ended": 0, "billed_once": 0}'; rc=1; fi; exit $$rc

# Short fuzzing pass over every fuzz target (FUZZTIME per target).
FUZZTIME ?= 10s
fuzz:
	./test/fuzz.sh $(FUZZTIME)

demo: build
	./$(BIN) demo

clean:
	rm -rf bin bench-results.json chaos-logs

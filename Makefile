# weft — build, test and benchmark targets. See README.md.
GO      ?= go
BIN     := bin/weft
PKGS    := ./...
# Unit and integration tests: the whole suite, as CI runs it.
TESTFLAGS ?= -count=1 -timeout 20m
# The revision weft version reports when the toolchain stamps none (-buildvcs=false).
REVISION := $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X github.com/weftgrid/weft/cmd/weft/internal/version.revision=$(REVISION)

.PHONY: all build test race lint bench fuzz demo clean install

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

# Short fuzzing pass over every fuzz target (FUZZTIME per target).
FUZZTIME ?= 10s
fuzz:
	./test/fuzz.sh $(FUZZTIME)

demo: build
	./$(BIN) demo

clean:
	rm -rf bin bench-results.json

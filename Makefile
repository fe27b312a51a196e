# sysdesign — run `make help` for the targets.

GO          ?= go
PKGS        ?= ./...
# make bench: BENCH selects benchmarks, COUNT repeats them for benchstat.
BENCH       ?= .
COUNT       ?= 6
BENCHTIME   ?= 1s
# make demo: extra flags for the lab, e.g. DEMOFLAGS="-only lb -quick".
DEMOFLAGS   ?=
TESTFLAGS   ?=
TEST_TIMEOUT ?= 14m
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

WITH_REDIS = ./scripts/with-redis

.PHONY: all help test test-short bench demo demo-quick lint fmt tidy clean

all: lint test

help:
	@echo "make test        go vet + go test -race over everything (starts a throw-away Redis if needed)"
	@echo "make bench       every benchmark, benchstat format (BENCH=regexp COUNT=n PKGS=./lb/...)"
	@echo "make demo        the trade-off lab: tables on stdout, report/index.html (DEMOFLAGS=-quick)"
	@echo "make lint        gofmt, go vet, staticcheck"

test:
	$(GO) vet $(PKGS)
	$(WITH_REDIS) $(GO) test -race -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(PKGS)

test-short:
	$(WITH_REDIS) $(GO) test -short $(TESTFLAGS) $(PKGS)

bench:
	$(WITH_REDIS) $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) -benchtime $(BENCHTIME) $(PKGS)

demo:
	$(WITH_REDIS) $(GO) run ./examples/tradeoffs $(DEMOFLAGS)

demo-quick:
	$(WITH_REDIS) $(GO) run ./examples/tradeoffs -quick $(DEMOFLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt -l reports unformatted files:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(GO) mod tidy

clean:
	rm -rf report

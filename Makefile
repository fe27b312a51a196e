# sysdesign — run `make help` for the targets.

GO          ?= go
# The repository's modules (see README "Modules"): every target runs in each,
# on its own go.mod (GOWORK=off), as a user or CI builds it.
MODULES     ?= . internal/sim consensus shard/replica examples bench
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
# make mutation: gremlins over these packages of the root module.
GREMLINS    ?= github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
MUTATE      ?= ./lb ./cache ./shard ./ratelimit ./resilience

WITH_REDIS = ./scripts/with-redis

.PHONY: all help test test-short bench demo demo-quick lint mutation fmt tidy clean

all: lint test

help:
	@echo "make test        go vet + go test -race in every module (starts a throw-away Redis and Redis Cluster if needed)"
	@echo "make bench       every benchmark, benchstat format (BENCH=regexp COUNT=n MODULES=bench PKGS=./lb/...)"
	@echo "make demo        the trade-off lab: tables on stdout, report/index.html (DEMOFLAGS=-quick)"
	@echo "make lint        gofmt, go vet, staticcheck"
	@echo "make mutation    gremlins mutation testing, ≥ 90 % efficacy (MUTATE=./shard), tens of minutes"

# in-modules runs its argument in every module's folder with GOWORK=off and
# fails at the first module that fails.
in-modules = set -e; for m in $(MODULES); do echo "== module $$m"; (cd $$m && export GOWORK=off && $(1)); done

test:
	$(call in-modules,$(GO) vet $(PKGS))
	$(WITH_REDIS) bash -c '$(call in-modules,$(GO) test -race -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(PKGS))'

test-short:
	$(WITH_REDIS) bash -c '$(call in-modules,$(GO) test -short $(TESTFLAGS) $(PKGS))'

bench:
	$(WITH_REDIS) bash -c '$(call in-modules,$(GO) test -run "^$$" -bench "$(BENCH)" -benchmem -count $(COUNT) -benchtime $(BENCHTIME) $(PKGS))'

demo:
	$(WITH_REDIS) $(GO) run ./examples/tradeoffs $(DEMOFLAGS)

demo-quick:
	$(WITH_REDIS) $(GO) run ./examples/tradeoffs -quick $(DEMOFLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt -l reports unformatted files:"; echo "$$out"; exit 1; fi
	$(call in-modules,$(GO) vet $(PKGS) && $(GO) run $(STATICCHECK) $(PKGS))
	$(call in-modules,$(GO) mod tidy -diff)

mutation:
	$(WITH_REDIS) bash -c 'set -e; for p in $(MUTATE); do GOWORK=off GOFLAGS=-count=1 $(GO) run $(GREMLINS) unleash --workers 2 --timeout-coefficient 4 --threshold-efficacy 90 $$p; done'

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(call in-modules,$(GO) mod tidy)

clean:
	rm -rf report

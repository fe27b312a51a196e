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
# go test starts a module's test binaries in the order of its arguments, and
# ./... sorts the examples module's longest package (the lab's) last, where
# it would run alone after the others: make test names it first.
EXAMPLES_FIRST = ./tradeoffs
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# make mutation: gremlins over every library package, as module:path or
# module:path:exclude (a regexp over file paths below path). A path takes
# its sub-packages along, but not a nested module: ./shard leaves
# shard/replica to its own entry, and consensus's . leaves ./registry.
GREMLINS    ?= github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
MUTATE      ?= .:./lb .:./cache .:./shard:^replica/ .:./ratelimit .:./resilience \
	consensus:.:^registry/ consensus:./registry shard/replica:.
MUTATION_WORKERS ?= 2
# e.g. GREMLINS_FLAGS=--dry-run to list the mutants without testing them.
GREMLINS_FLAGS ?=

# make fuzz (part of make test): each HTTP API's request decoding, fuzzed
# for FUZZTIME beyond its seeds; module:package:target. A count of inputs,
# not a duration: Go 1.26's fuzzing coordinator can fail a target with
# "context deadline exceeded" when a duration ends during an input (fixed
# in Go 1.27).
FUZZTIME    ?= 2000x
FUZZ_TARGETS ?= consensus:.:FuzzHandler_Request consensus:./registry:FuzzHandler_Request \
	examples:./shortener/service:FuzzHandler examples:./replica:FuzzAPI \
	examples:./chat/service:FuzzHTTPRequest examples:./internal/httpsec:FuzzMiddleware \
	examples:./shop/service:FuzzDecodeRequests \
	examples:./feed/service:FuzzHTTPRequest

WITH_REDIS = ./scripts/with-redis

.PHONY: all help test fuzz test-short bench demo demo-quick lint mutation fmt tidy clean

all: lint test

help:
	@echo "make test        go vet + go test -race in every module (starts a throw-away Redis and Redis Cluster if needed), then make fuzz"
	@echo "make fuzz        fuzz each HTTP API's request decoding for FUZZTIME (default 2000x inputs) beyond its seeds"
	@echo "make bench       every benchmark, benchstat format (BENCH=regexp COUNT=n MODULES=bench PKGS=./lb/...)"
	@echo "make demo        the trade-off lab: tables on stdout, report/index.html (DEMOFLAGS=-quick)"
	@echo "make lint        gofmt, go vet, staticcheck"
	@echo "make mutation    gremlins mutation testing of every library package, ≥ 90 % efficacy (MUTATE=consensus:./registry), hours"

# in-modules runs its argument in every module's folder with GOWORK=off and
# fails at the first module that fails.
in-modules = set -e; for m in $(MODULES); do echo "== module $$m"; (cd $$m && export GOWORK=off && $(1)); done

test:
	$(call in-modules,$(GO) vet $(PKGS))
	$(WITH_REDIS) bash -c '$(call in-modules,first=; [ "$(PKGS)" = ./... ] && [ "$$m" = examples ] && first="$(EXAMPLES_FIRST)"; \
	  $(GO) test -race -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $$first $(PKGS))'
	$(MAKE) --no-print-directory fuzz

fuzz:
	$(WITH_REDIS) bash -c 'set -e; for t in $(FUZZ_TARGETS); do IFS=: read -r m p f <<< "$$t"; echo "== fuzz $$f in $$m $$p"; (cd $$m && GOWORK=off $(GO) test -run "^$$" -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p); done'

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

# gremlins tests each mutant in a copy of its module alone, where a nested
# module's relative replace (../) points at nothing: such a module runs on
# a copy of its go.mod (-modfile) whose replaces are absolute paths.
mutation:
	$(WITH_REDIS) bash -c 'set -e; tmp=$$(mktemp -d); trap "rm -rf $$tmp" EXIT; \
	  for e in $(MUTATE); do IFS=: read -r m p x <<< "$$e"; echo "== mutation $$p in module $$m"; \
	    ( cd $$m; flags=-count=1; \
	      if [ "$$m" != . ]; then mod=$$tmp/$${m//\//_}.mod; cp go.sum $${mod%.mod}.sum; \
	        while IFS= read -r l; do \
	          if [[ $$l =~ ^(.*=\>[[:space:]]*)(\.\.[^[:space:]]*)(.*)$$ ]]; then l=$${BASH_REMATCH[1]}$$(realpath -m "$${BASH_REMATCH[2]}")$${BASH_REMATCH[3]}; fi; \
	          printf "%s\n" "$$l"; done < go.mod > $$mod; flags="$$flags -modfile=$$mod"; fi; \
	      GOWORK=off GOFLAGS="$$flags" $(GO) run $(GREMLINS) unleash --workers $(MUTATION_WORKERS) --timeout-coefficient 4 \
	        --threshold-efficacy 90 $(GREMLINS_FLAGS) $${x:+--exclude-files "$$x"} $$p ); done'

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(call in-modules,$(GO) mod tidy)

clean:
	rm -rf report

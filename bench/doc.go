// Package bench measures this library beside the peer libraries a Go
// programmer would otherwise reach for, in the same run, so that a claim
// such as "a round-robin pick costs no more than gRPC's" is a line of
// benchstat output rather than a sentence.
//
// It is a module of its own (github.com/sysdesign-go/sysdesign/bench) so
// that the peers' dependency trees — gRPC, go-kratos, failsafe-go and the
// rest — stay out of the library's go.mod: importing package ratelimit or
// lb never brings them. It calls the library through its public API only,
// as a user's program does, and replaces the library's module with the
// code beside it, so it always measures this checkout.
//
// The package holds only tests, one file per package of the library. Each
// benchmark runs ours and the peers as sub-benchmarks of the same
// benchmark, named alike (algo=NAME, then the workload's own keys such as
// backends=N or shards=N, and /parallel for b.RunParallel), so that
// benchstat lines them up:
//
//   - cache_test.go: BenchmarkCache_Get, BenchmarkCache_Mixed75_25 and
//     BenchmarkCache_GetSerial, cache.Memory under each policy beside
//     otter v2 (W-TinyLFU) and golang-lru v2 (LRU), full and on a Zipf
//     stream, with the CPU time per operation (cpu-ns/op).
//   - lb_test.go: BenchmarkLB_Pick, lb's RoundRobin (with and without
//     Options.DisableStats) and P2C beside gRPC-go's round_robin and
//     least_request pickers; BenchmarkLB_PickEWMA, PeakEWMA beside
//     go-kratos's p2c selector over EWMA nodes.
//   - ratelimit_test.go: BenchmarkRatelimit_Allow, every algorithm beside
//     golang.org/x/time/rate; BenchmarkRatelimit_Take, the leaky bucket's
//     pacer beside go.uber.org/ratelimit; BenchmarkRatelimit_Keyed, per-key
//     limits of every algorithm over 100,000 and 1,000,000 keys beside
//     sethvargo/go-limiter's memorystore, with the heap each needs per key
//     (B/key) and the CPU time per decision (cpu-ns/op).
//   - shard_test.go: BenchmarkShard_Lookup, Ring beside groupcache's
//     consistenthash and Jump beside dgryski/go-jump;
//     BenchmarkShard_JumpHash, the jump loop alone beside go-jump's.
//   - resilience_test.go: BenchmarkResilience_Policy, each policy and the
//     documented pipeline beside failsafe-go configured alike (compare
//     algo=resilience with algo=failsafe-go within each policy=);
//     BenchmarkResilience_Bulkhead, a bulkhead slot beside failsafe-go's
//     bulkhead permit.
//
// Each peer also has a harness test (TestGRPCPeerHarness and the like)
// proving that what is measured really balances, places or limits, so that
// no comparison is against a peer that does nothing.
//
// Run every comparison from the repository's root with
//
//	make bench MODULES=bench
//
// or, in this folder, six times over for benchstat:
//
//	cd bench && go test -run '^$' -bench . -benchmem -count 6 | benchstat -
//
// benchstat -col /algo prints ours and the peers as columns side by side.
// The benchmarks of each package's own code, including those that need its
// internals or a Redis server, stay in that package.
package bench

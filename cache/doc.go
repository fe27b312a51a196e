// Package cache implements, from the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Database Design → Caching
// Strategies": an L1 in-process cache, an L2 distributed cache on Redis, the
// four cache patterns, and TTL, LRU, LFU, manual and event-driven
// invalidation. It also serves "Performance Considerations → Latency
// Optimization → Caching" (application cache, distributed cache) and
// "Throughput Optimization → Caching" (reduce database hits).
//
// # Stores
//
//   - [Memory] is the L1: a sharded in-process map bounded by entry count or
//     weight, with per-entry TTL and an eviction [Policy]: [TinyLFU]
//     (W-TinyLFU, the default; resists scans), [LRU], [LFU] (with aging)
//     and [TTLOnly]. Reads take no lock and do not allocate. Eviction
//     callbacks get a [Reason] and never run under a lock.
//   - [Redis] is the L2 on go-redis's UniversalClient (single node,
//     Sentinel or Cluster): a pluggable [Codec] ([JSON] by default), per-entry
//     TTL, pipelined batches, key prefixes, prefix deletion by SCAN.
//   - [MultiLevel] is L1 over L2: L2 hits fill L1 with the remaining TTL,
//     writes and deletes go through both, Redis pub/sub evicts changed keys
//     from every other process's L1, and a failing Redis degrades to L1 plus
//     the source. A circuit breaker stops calling a Redis that keeps
//     failing ([MultiLevelOptions.BreakAfter]), so a blackholed Redis costs
//     no more than a refused one, and probes it again shortly; L2 entries
//     that missed a write or a deletion meanwhile are never served and are
//     deleted from Redis before it serves again.
//
// All three implement [Store], so every pattern runs over any of them.
//
// # Patterns
//
//   - [Aside]: cache-aside with per-key stampede protection, negative
//     caching and TTL jitter; [ReadThrough] binds it to a [Loader].
//   - [WriteThrough]: source first, then cache; never caches a value the
//     source refused.
//   - [WriteBehind]: acknowledged after the cache, flushed in coalesced
//     batches with retries; a bounded queue with a [FullPolicy]; Flush and
//     Close drain it, and nothing acknowledged is silently dropped.
//   - [RefreshAhead]: reloads values in the background before they expire,
//     at a fixed fraction of the TTL or by the XFetch rule.
//
// # Invalidation
//
// TTL: every store takes a per-entry TTL and a default. LRU and LFU: the
// [Memory] policies. Manual: [Memory.Delete], [Memory.DeleteFunc] (by
// prefix, by a tag kept in the value), [Redis.DeletePrefix] (SCAN and
// UNLINK), and [MultiLevel.DeletePrefix], which deletes a group of keys
// ("user:42:", or a tag made part of the key) from L2, from L1 and from
// every other process's L1. Event-driven: [MultiLevelOptions.Channel].
//
// # Guarantees
//
// Every exported type is safe for concurrent use. The cache is eventually
// consistent with the source: cache-aside and read-through serve a value
// until its TTL or an invalidation; write-through keeps cache and source in
// step for writes made through it; write-behind gives read-your-writes from
// the cache and at-least-once delivery to the source (a batch may be
// retried), and loses the queue only if the process dies. Cross-process
// invalidation is at-most-once per message; a dropped subscription clears
// L1, and [MultiLevelOptions.L1TTL] bounds staleness in the worst case.
//
// # Choices
//
// The L2 breaker is gobreaker v2's two-step breaker, used directly rather
// than through the resilience package's CircuitBreaker: the cache needs
// only "stop after N failures in a row, probe after a pause", and
// importing resilience would link net/http and the rest of that package
// into every program that caches. The breaker's state changes are queued
// under gobreaker's lock and handed to [MultiLevelOptions.OnL2State] after
// it, so no user code runs under a lock. The honest rule for what an
// outage leaves behind: a key whose L2 write or deletion failed or was
// skipped is not read from L2 until it has been deleted there, and the
// probe that ends an outage deletes them first.
//
// [WriteBehind.Close] is bounded by its context even when the source is
// slow or hangs: it cancels the batch in flight and returns an
// [*UnflushedError] with exactly the keys the source has not
// acknowledged.
//
// Errors wrap [ErrInvalidConfig], [ErrNotFound], [ErrTooLarge],
// [ErrCodec], [ErrQueueFull], [ErrClosed], [ErrUnflushed] and [ErrL2Open],
// testable with errors.Is.
package cache

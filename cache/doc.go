// Package cache implements, from the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Database Design → Caching
// Strategies": an L1 in-process cache, the four cache patterns, and TTL,
// LRU, LFU, manual and event-driven invalidation. It also serves
// "Performance Considerations → Latency Optimization → Caching"
// (application cache) and "Throughput Optimization → Caching" (reduce
// database hits). The L2 distributed cache on Redis and the multi-level
// cache (L1 over Redis, with pub/sub invalidation) are in the sub-package
// [github.com/sysdesign-go/sysdesign/cache/rediscache], so a program that
// caches in process only links no Redis client.
//
// The lines a user writes first — cache-aside over an in-process cache of
// 10,000 entries, one load per key however many callers miss at once:
//
//	store, err := cache.NewMemory(10_000, cache.MemoryOptions[string, User]{})
//	users, err := cache.NewAside(store.AsStore(), cache.AsideOptions{TTL: time.Minute})
//	u, err := users.Get(ctx, id, func(ctx context.Context, id string) (User, error) {
//		return db.LoadUser(ctx, id) // runs on a miss only
//	})
//
// Which constructor to prefer: [NewMemory] with the default policy
// (TinyLFU) for the store; [NewAside] when the caller loads on a miss,
// [NewReadThrough] when one [Loader] serves every key, [NewWriteThrough] or
// [NewWriteBehind] when writes go through the cache; rediscache.New and
// rediscache.NewMultiLevel once several processes must share what they
// cache. Runnable examples: ExampleAside, ExampleMemory, ExampleWriteBehind
// and the others in this package's documentation, the sub-package's
// examples, and the program examples/cache.
//
// # Stores
//
//   - [Memory] is the L1: a sharded in-process map bounded by entry count or
//     weight, with per-entry TTL and an eviction [Policy]: [TinyLFU]
//     (W-TinyLFU, the default; resists scans), [LRU], [LFU] (with aging)
//     and [TTLOnly]. Reads take no lock and do not allocate. The capacity
//     is the whole store's: sharding costs none of it. Eviction callbacks
//     get a [Reason] and never run under a lock. Each policy's algorithm
//     is in a file of its own (lru.go, lfu.go, ttl.go, tinylfu.go with
//     sketch.go and hillclimb.go); the lock-free hash table is under
//     cache/internal/table, the striped read counters in stripe.go.
//   - rediscache.Cache is the L2 on go-redis's UniversalClient (single node,
//     Sentinel or Cluster), and rediscache.MultiLevel is L1 over L2 with
//     event-driven invalidation across processes and a circuit breaker in
//     front of Redis.
//
// Each store has one name per operation: Get, Set and Delete. The patterns
// compose the [Store] interface of those three; rediscache's types
// implement it, and [Memory.AsStore] adapts a Memory (whose own Get and
// Set take no context and cannot fail on a read), so every pattern runs
// over any of them.
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
// prefix, by a tag kept in the value); in Redis, rediscache's
// DeletePrefix. Event-driven: rediscache.MultiLevel's pub/sub channel.
//
// # Guarantees
//
// Every exported type is safe for concurrent use. The cache is eventually
// consistent with the source: cache-aside and read-through serve a value
// until its TTL or an invalidation; write-through keeps cache and source in
// step for writes made through it; write-behind gives read-your-writes from
// the cache and at-least-once delivery to the source (a batch may be
// retried), and loses the queue only if the process dies.
//
// # Choices
//
// [WriteBehind.Close] is bounded by its context even when the source is
// slow or hangs: it cancels the batch in flight and returns an
// [*UnflushedError] with exactly the keys the source has not
// acknowledged.
//
// Errors wrap [ErrInvalidConfig], [ErrNotFound], [ErrTooLarge],
// [ErrQueueFull], [ErrClosed] and [ErrUnflushed], testable with
// errors.Is.
package cache

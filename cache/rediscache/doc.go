// Package rediscache implements, from the guide
// System Design Round — Principal Engineer Interview Preparation, the
// distributed half of "Database Design → Caching Strategies": the L2
// cache on Redis, the multi-level cache (L1 in process over L2 in Redis)
// and event-driven invalidation across processes. It also serves
// "Performance Considerations → Latency Optimization → Caching" (multiple
// cache layers, a distributed cache shared by every instance). The
// in-process cache and the patterns that run over both are in package
// [github.com/sysdesign-go/sysdesign/cache]; this sub-package holds what
// needs go-redis, so that a program caching in process only does not link
// it.
//
//	l2, err := rediscache.New[User](client, rediscache.Options{Prefix: "app:users:"})
//	ml, err := rediscache.NewMultiLevel(ctx, l1, l2, rediscache.MultiLevelOptions{Channel: "app:invalidate"})
//	users, err := cache.NewAside(ml, cache.AsideOptions{TTL: time.Hour})
//
// # Types
//
//   - [Cache] is the L2: a pluggable [Codec] ([JSON] by default), per-entry
//     TTL, pipelined batches, key prefixes, prefix deletion by SCAN.
//   - [MultiLevel] is a [cache.Memory] L1 over a [Cache] L2: L2 hits fill
//     L1 with the remaining TTL, writes and deletes go through both, Redis
//     pub/sub evicts changed keys from every other process's L1, and a
//     failing Redis degrades to L1 plus the source. A circuit breaker stops
//     calling a Redis that keeps failing ([MultiLevelOptions.BreakAfter]),
//     so a blackholed Redis costs no more than a refused one, and probes it
//     again shortly; L2 entries that missed a write or a deletion meanwhile
//     are never served and are deleted from Redis before it serves again.
//
// Both implement [cache.Store], so [cache.Aside], [cache.WriteThrough],
// [cache.WriteBehind] and [cache.RefreshAhead] run over them.
//
// # Single node, Sentinel, Cluster
//
// Both types take a redis.UniversalClient, so a single node (*redis.Client),
// a Sentinel failover client and a Redis Cluster (*redis.ClusterClient)
// work unchanged; the tests run every Redis test on a single node and on a
// three-master Cluster. A Ring (*redis.Ring, sharded by the client) works
// too: [Cache.DeletePrefix] walks every shard, as it walks every master of
// a Cluster.
//
// Hash tags: neither type needs one. No operation puts two keys in one
// command, script or transaction: [Cache.Get] is a script on one key,
// the batches ([Cache.GetMany], [Cache.SetMany], [Cache.Delete]) pipeline
// one single-key command per key (go-redis's cluster client sends each to
// the node that owns its slot), [Cache.DeletePrefix] walks every master
// with SCAN and unlinks key by key, and invalidation messages go over
// classic pub/sub, which a Cluster delivers to subscribers on every node.
// So [Options.Prefix] may be any string and the keys under it spread over
// every slot, which is what a cache wants; a prefix with a hash tag
// ("{app}:") is accepted too, but puts the whole cache on one master.
//
// A Cluster can lose one master while the others answer. Calls for its
// slots fail; [MultiLevel] serves keys on the other masters from L2 as
// before, and the keys whose writes failed are kept off L2 until the
// master is back and they have been deleted there. The breaker watches L2
// as a whole: it opens only when [MultiLevelOptions.BreakAfter] calls in
// a row fail, so while one master of several is down it usually stays
// closed and each call for that master's slots waits for the failure.
//
// # Invalidation
//
// TTL: every entry has one, or [Options.DefaultTTL]. Manual: [Cache.Delete],
// [Cache.DeletePrefix] (SCAN and UNLINK, never KEYS), and
// [MultiLevel.DeletePrefix], which deletes a group of keys ("user:42:", or
// a tag made part of the key) from L2, from L1 and from every other
// process's L1. Event-driven: [MultiLevelOptions.Channel].
//
// # Guarantees
//
// Every exported type is safe for concurrent use. Cross-process
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
// Errors wrap [cache.ErrInvalidConfig] (bad options, zero values), [ErrCodec]
// and [ErrL2Open], testable with errors.Is.
package rediscache

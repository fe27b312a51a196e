// Package shard implements, from the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Database Design → Database
// Sharding" (and "Performance Considerations → Throughput Optimization →
// Database Sharding"): placing keys on shards, routing reads, writes and
// cross-shard queries to them, and moving data when the shard set changes.
//
// The lines a user writes first — four shards on a consistent-hash ring,
// reads and writes routed by key:
//
//	nodes := shard.NodesNamed("s0", "s1", "s2", "s3")
//	ring, err := shard.NewRing(nodes, shard.RingOptions{})
//	router, err := shard.NewRouter(ring, stores, shard.RouterOptions{}) // stores: name → Store
//	err = router.Put(ctx, "user:42", value)
//	v, err := router.Get(ctx, "user:42")
//
// Which placement to prefer: [NewRing] (or [NewJump] when shards are only
// ever appended) unless the section below says why another fits; runnable
// examples: ExampleRouter, ExampleNewRing, ExampleMigration and the others
// in this package's documentation, and the program examples/shard.
//
// # Placement
//
// Every algorithm implements [Placement] (key → shard index) over a set of
// [Node] values, is immutable and safe for concurrent use, and looks up
// without allocating. The guide's strategies map to them so:
//
//   - Hash-based, modulo: [Modulo] — the baseline; adding a shard moves
//     almost every key ("difficult to add/remove shards").
//   - Hash-based, consistent hashing: [Ring] (virtual nodes and weights),
//     [Bounded] (consistent hashing with bounded loads, a cap of c × the
//     fair share of keys) and [BoundedLoads] (the same cap on live load,
//     for request routing), [Jump] (no memory, shards only appended),
//     [Rendezvous] (highest random weight, exact weights, O(n) lookup),
//     [Maglev] (a lookup table, the fastest lookup). All move close to the
//     ideal 1/(n+1) of keys when a shard is added.
//   - Range-based: [Range] — sorted split points, [Range.Split] and
//     [Range.Merge], hot-range detection with [Range.Observe] and
//     [Range.Hot].
//   - Directory-based: [Directory] (an explicit key → shard table with a
//     fallback placement, e.g. a [Range]), a remote [DirectorySource]
//     such as a Redis hash (redisshard.Directory), and [CachedDirectory] to cut its lookup
//     overhead and ride out its outages.
//
// Placements name shards, not positions: the same nodes in any order place
// every key on the same named shard (except [Jump] and [Modulo], which are
// defined on positions). Every [Node] carries a weight greater than zero, 1
// when unweighted ([NodesNamed]); placements that cannot honour weights
// ([Modulo], [Jump], [Range]) reject any other. Bad input — no shards,
// duplicate names, zero, negative, NaN or infinite weights, unsorted or
// overlapping ranges, entries naming unknown shards — returns an error
// wrapping [ErrInvalidConfig] and a more precise
// sentinel ([ErrNoShards], [ErrDuplicateShard], [ErrInvalidWeight],
// [ErrInvalidRange], [ErrUnknownShard]); nothing panics.
//
// # Rebalancing
//
// [PlanMoves] compares two placements over a set of keys and lists which
// keys move from which shard to which, and the fraction moved;
// [PlanRanges] does the same for two range layouts without enumerating
// keys.
//
// # Routing and cross-shard queries
//
// A [Router] sends single-key operations to the shard that owns the key,
// over any [Store] (get, put, delete, ordered scan): [MemStore] in memory,
// or Redis with one key prefix per shard (redisshard.Store). Cross-shard
// queries ([Router.Scan], [Router.TopN], [Router.Count], and [Scatter] for
// any other) run on every shard in parallel under a deadline and merge the
// results; when some shards fail the result comes with a [*PartialError]
// naming them. Over a [Range] placement a range query asks only the shards
// whose ranges overlap it ([Range.ShardsFor]). [Vertical] routes whole
// tables to their own shard sets (vertical sharding).
//
// # Shard keys
//
// By default the whole key is placed. [RouterOptions.ShardKey] (and the
// matching options of [Migration] and [PlanMoves]) place only part of it,
// so related rows share a shard; [HashTag] takes the part in braces, as
// Redis Cluster does ("{user:42}:orders:7" → "user:42").
//
// # Online migration
//
// A [Migration] moves data to a new placement while reads and writes
// continue, in the Vitess order copy → verify → switch: double-reads (new
// shard, then old) during the move, copying in batches with a resumable
// [Checkpoint] ([MemCheckpoint], redisshard.Checkpoint), verification, the
// switch, and cleanup of old copies. Every key stays readable throughout,
// and a cancelled or crashed copy resumes.
//
// # Guarantees
//
// The package keeps no state of its own beyond the stores it is given: a
// Redis-backed store is as durable and as consistent as the Redis
// deployment behind it (single node, Sentinel or Cluster through
// redis.UniversalClient). Single-key operations are as atomic as the
// store's; cross-shard queries are not snapshots (each shard answers at its
// own moment) and cross-shard writes are not transactions, which is the
// guide's "maintaining ACID properties across shards" challenge.
//
// Make every type with its constructor; only [MemStore] and
// [MemCheckpoint] work from their zero value. Called on a [Router],
// [Migration] or [CachedDirectory] its constructor did not make, every
// method that returns an error returns one wrapping [ErrInvalidConfig] at
// once.
//
// # Redis
//
// Package [github.com/sysdesign-go/sysdesign/shard/redisshard] keeps a
// [Store], a [DirectorySource] and a [Checkpoint] in Redis (single node,
// Sentinel or Cluster). It is separate so that this package, and package
// lb which builds on it, link no Redis client.
package shard

// Package redisshard keeps the state of package shard in Redis: [Store],
// one shard's ordered key-value data under a key prefix; [Directory], a
// shared lookup table for directory-based sharding; and [Checkpoint], so a
// [shard.Migration] resumes after a crash.
//
// Guide: Database Design → Database Sharding (directory-based sharding,
// rebalancing), and Throughput Optimization → Database Sharding. It is a
// package of its own so that a program using only the in-memory
// placements, routers and stores of shard (or package lb, which builds on
// them) links no Redis client.
//
//	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs}) // or NewClient, NewFailoverClient
//	stores := map[string]shard.Store{}
//	for _, n := range nodes {
//		stores[n.Name], err = redisshard.NewStore(client, "orders:{"+n.Name+"}:", redisshard.Options{})
//	}
//	router, err := shard.NewRouter(placement, stores, shard.RouterOptions{})
//
// Every type takes a [redis.UniversalClient], so it works on a single
// node, on Sentinel and on Redis Cluster. The hash-tag rule each relies on:
//
//   - [Store] writes its data hash and its index in one MULTI/EXEC, so both
//     keys must share a slot. On a *redis.ClusterClient, [NewStore] refuses
//     a prefix without a non-empty {hash tag} ("orders:{s1}:") with an
//     error wrapping [shard.ErrInvalidConfig]; give each shard its own tag,
//     and the shards spread over the cluster's nodes.
//   - [Directory] and [Checkpoint] keep everything in one hash, so any
//     prefix works.
//
// Each call is bounded by [Options.Timeout] on top of the caller's context.
// Called on a value its constructor did not make, every method returns an
// error wrapping [shard.ErrInvalidConfig].
package redisshard

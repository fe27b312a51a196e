// Package redisbreaker keeps shared circuit-breaker state in Redis: [Store]
// is the [resilience.BreakerStore] through which [resilience.SharedBreaker]
// instances in many processes agree on one state per breaker, and
// [DataStore] is gobreaker's SharedDataStore, so that gobreaker's own
// DistributedCircuitBreaker can be run on the same Redis for comparison.
//
// Guide: Fault Tolerance → Circuit Breakers (Open, Half-Open, Closed), and
// Microservices → Circuit Breakers: Prevent cascade failures — one
// instance's view of a failing dependency protects the whole fleet.
//
//	store, err := redisbreaker.NewStore(client, "breakers:")
//	b, err := resilience.NewSharedBreaker[Order](store, resilience.SharedBreakerOptions{Name: "payments"})
//	order, err := b.Execute(ctx, callPayments) // resilience.ErrOpen while the fleet's breaker is open
//
// Why two packages, this one and redisqueue, rather than one Redis package
// for resilience: a breaker store and a dead-letter queue serve different
// guide sections and different programs, and at the call site
// redisbreaker.NewStore and redisqueue.New say what they make without a
// Redis-prefixed type name. Both are separate from package resilience so
// that a program using only in-memory policies links no Redis client.
//
// Both types take a [redis.UniversalClient], so they work on a single
// node, on Sentinel and on Redis Cluster. The hash-tag rule each relies on:
//
//   - [Store] runs one Lua script over two keys per breaker,
//     <prefix>{<name>}:state and <prefix>{<name>}:counts, which share a
//     slot through the {name} tag. [NewStore] refuses a prefix with a
//     brace, and every call refuses an empty name or one with a brace
//     (errors wrapping [resilience.ErrInvalidConfig]): either would let a
//     Cluster put the two keys on different slots.
//   - [DataStore] touches one key per operation, so any prefix works.
package redisbreaker

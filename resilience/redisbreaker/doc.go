// Package redisbreaker keeps shared circuit-breaker state in Redis: [Store]
// is the [sharedbreaker.Store] through which [sharedbreaker.Breaker]
// instances in many processes agree on one state per breaker.
//
// Guide: Fault Tolerance → Circuit Breakers (Open, Half-Open, Closed), and
// Microservices → Circuit Breakers: Prevent cascade failures — one
// instance's view of a failing dependency protects the whole fleet.
//
//	store, err := redisbreaker.NewStore(client, "breakers:")
//	b, err := sharedbreaker.New[Order](sharedbreaker.Options{Store: store, Name: "payments"})
//	order, err := b.Execute(ctx, callPayments) // resilience.ErrOpen while the fleet's breaker is open
//
// It is separate from package sharedbreaker so that a program sharing a
// breaker within one process ([sharedbreaker.MemoryStore]) links no Redis
// client. The bench module runs gobreaker's own DistributedCircuitBreaker
// on the same Redis beside it (BenchmarkSharedBreaker_Execute).
//
// A [Store] takes a [redis.UniversalClient], so it works on a single
// node, on Sentinel and on Redis Cluster. The hash-tag rule it relies on:
// it runs one Lua script over two keys per breaker,
// <prefix>{<name>}:state and <prefix>{<name>}:counts, which share a slot
// through the {name} tag. [NewStore] refuses a prefix with a brace, and
// every call refuses an empty name or one with a brace (errors wrapping
// [resilience.ErrInvalidConfig]): either would let a Cluster put the two
// keys on different slots.
package redisbreaker

// Package sharedbreaker is a circuit breaker whose state a fleet shares,
// from the guide System Design Round — Principal Engineer Interview
// Preparation, "Fault Tolerance → Circuit Breakers (Open, Half-Open,
// Closed)" and "Microservices → Circuit Breakers: Prevent cascade
// failures": when one instance's calls trip a [Breaker], every instance
// protecting the same dependency opens, and a new instance starts with the
// fleet's knowledge.
//
//	store, err := redisbreaker.NewStore(client, "breakers:")
//	b, err := sharedbreaker.New[Order](sharedbreaker.Options{Store: store, Name: "payments"})
//	order, err := b.Execute(ctx, callPayments) // resilience.ErrOpen while the fleet's breaker is open
//
// The state lives in a [Store], which applies every transition
// atomically: [MemoryStore] within one process (it reads no clock, so a
// simulation drives it on virtual time), package
// [github.com/sysdesign-go/sysdesign/resilience/redisbreaker] across
// processes. Each instance caches the state for [Options].CacheTTL, so
// the breaker is eventually consistent across instances, and it fails open
// when its store is unreachable.
//
// A [Breaker] is a resilience.Policy: put it in a resilience.Pipeline
// where a resilience.CircuitBreaker would go. Bad configuration returns an
// error wrapping resilience.ErrInvalidConfig that names the value; a
// rejected call returns a *resilience.PolicyError wrapping
// resilience.ErrOpen.
package sharedbreaker

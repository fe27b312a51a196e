// Package resilience implements, from the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Fault Tolerance" — circuit breakers with their three states, timeouts
// and fallbacks — together with "Microservices → Circuit Breakers:
// Prevent cascade failures" and the retries, bulkheads, hedging and load
// shedding that production clients and servers need around them.
//
// The lines a user writes first — a call retried with backoff behind a
// circuit breaker:
//
//	breaker, err := resilience.NewCircuitBreaker[Reply](resilience.BreakerOptions{Name: "payments"})
//	retry, err := resilience.NewRetry[Reply](resilience.RetryOptions{MaxAttempts: 3})
//	calls, err := resilience.NewPipeline[Reply](retry, breaker) // retry outside, breaker inside
//	reply, err := calls.Execute(ctx, func(ctx context.Context) (Reply, error) {
//		return client.Charge(ctx, order)
//	})
//
// Runnable examples: ExamplePipeline, ExampleCircuitBreaker, ExampleRetry
// and the others in this package's documentation, and the program
// examples/resilience.
//
// # Map to the guide
//
//   - Circuit Breakers (Open, Half-Open, Closed): [CircuitBreaker], built on
//     github.com/sony/gobreaker/v2, with trip policies [ConsecutiveFailures],
//     [FailureRate] (time window) and [NewCountWindow] (count window, on the
//     failure rate or the slow-call rate).
//   - Timeout Configuration: [Timeout], per attempt or overall.
//   - Fallback Mechanisms: [Fallback].
//   - Failover / automatic recovery: [Retry] with [Backoff] (no, full,
//     equal and decorrelated jitter), Retry-After ([ParseRetryAfter]) and a
//     [Budget] that caps a fleet's retries.
//   - Redundancy for latency: [Hedge] ("The Tail at Scale").
//   - Microservices — fault isolation: [Bulkhead] and [Bulkheads].
//   - Throughput under overload: [AdaptiveThrottle] (client side, the SRE
//     book's formula) and [LoadShedder] (server side, an adaptive
//     concurrency limit — [ShedAIMD] or [ShedGradient] — with an HTTP
//     middleware answering 503 + Retry-After).
//
// Four sub-packages hold the rest of the guide's fault tolerance, each
// with its own guide section and none needed by the policies above:
//
//   - [github.com/sysdesign-go/sysdesign/resilience/sharedbreaker]: a
//     circuit breaker whose state a fleet shares through a store, in
//     memory or in Redis ([github.com/sysdesign-go/sysdesign/resilience/redisbreaker]).
//   - [github.com/sysdesign-go/sysdesign/resilience/degrade]: Graceful
//     Degradation — stale answers when a dependency fails, and feature
//     switches.
//   - [github.com/sysdesign-go/sysdesign/resilience/fault]: Chaos
//     Engineering — failure injection for functions, HTTP handlers and
//     HTTP clients.
//   - [github.com/sysdesign-go/sysdesign/resilience/dlq]: Message Queues →
//     Dead Letter Queues — a worker that requeues failed messages and
//     dead-letters poison ones, on a queue in memory or in a Redis Stream
//     ([github.com/sysdesign-go/sysdesign/resilience/dlq/redisdlq]).
//
// # Composition
//
// Every policy implements [Policy]; [NewPipeline] composes them, the first
// outermost. The recommended order, as in failsafe-go and resilience4j, is
//
//	Fallback → Retry → CircuitBreaker → Bulkhead → Timeout → call
//
// so the fallback answers for everything, each retry is counted by the
// breaker, the bulkhead bounds concurrent attempts and the timeout bounds
// each attempt. Non-generic policies ([Bulkhead], [AdaptiveThrottle],
// [LoadShedder], and fault.Injector and degrade.Switch) are a [Guard],
// which [Guarded] turns into a Policy of any result type.
//
// # Configuration
//
// Every policy is made the same way, NewX(XOptions) (*X, error):
//
//	fallback, err := resilience.NewFallback(resilience.FallbackOptions[Page]{Value: cached})
//	retry, err := resilience.NewRetry[Page](resilience.RetryOptions{MaxAttempts: 3})
//	breaker, err := resilience.NewCircuitBreaker[Page](resilience.BreakerOptions{Name: "render"})
//	bulkhead, err := resilience.NewBulkhead(resilience.BulkheadOptions{MaxConcurrent: 10})
//	timeout, err := resilience.NewTimeout[Page](resilience.TimeoutOptions{Timeout: time.Second})
//
// Options are structs whose zero fields take documented defaults, except
// for the decisions a default would hide: how many times a call may run
// ([RetryOptions].MaxAttempts — retrying is safe only for idempotent
// calls), how much extra load retries may add ([BudgetOptions].Ratio), how
// many calls a bulkhead admits ([BulkheadOptions].MaxConcurrent), and how
// long a call may take ([TimeoutOptions].Timeout). Those are required, and
// 0 is an error, not a default. Every bad value — zero or negative
// attempts, a [Backoff] Max below its Base, a [Jitter] outside its range, a
// budget ratio outside (0, 1], a nil function — is an error wrapping
// [ErrInvalidConfig] that names the value; no constructor or Execute
// panics on bad input.
//
// Make each policy and guard with its constructor. Called on a value its
// constructor did not make (the zero value or a nil pointer), Execute,
// Enter and [Bulkhead.Acquire] return at once an error wrapping
// [ErrInvalidConfig] that says so.
//
// No call blocks on a misuse, and no release is counted twice: a
// [Bulkhead] hands out slots as [BulkheadSlot] values whose Release frees
// the slot once however often it is called, and the [Permit] a Bulkhead or
// a [LoadShedder] gives on Enter is released once however often Exit is
// called with it.
//
// # Errors
//
// A policy that rejects a call or gives up returns a [*PolicyError] naming
// the policy, wrapping a sentinel ([ErrOpen], [ErrBulkheadFull],
// [ErrTimeout], [ErrRetriesExhausted], [ErrBudgetExhausted], [ErrThrottled],
// [ErrShed]) and the underlying cause, so errors.Is reaches both. Bad
// configuration returns an error wrapping [ErrInvalidConfig]. Caller
// cancellation is never counted as a dependency failure.
//
// # Time, concurrency, observability
//
// Every type is safe for concurrent use. Time-dependent parts take a Now
// option, and [Retry] also its Sleep and Rand, so [Retry], [Fallback],
// [Pipeline], a fail-fast [Bulkhead] and the [LoadShedder] middleware run
// unchanged on a simulator's virtual time — the trade-off lab
// (examples/tradeoffs, -only resilience) runs them so. The building blocks
// also have pure or "At" forms ([Backoff.Delay], [Budget.TryExtraAt],
// [AdaptiveThrottle.AllowAt], [LoadShedder.TryAcquire]/
// [LoadShedder.Release]). [Timeout] derives its deadline with
// context.WithTimeout, [Hedge] starts goroutines on real timers, and
// gobreaker's own timers (behind [CircuitBreaker]) read time.Now; tests
// drive them with testing/synctest. Each stateful policy has a Stats
// method and hooks (state changes, retries, limit changes) that never run
// under a lock. No type of this package keeps goroutines, connections or
// work between calls, so none has a Close (the README's rule); the
// dead-letter worker of package dlq does, and has one.
//
// # Performance
//
// On the success path no policy allocates except [Timeout], whose derived
// context does, and a [Pipeline] of this package's policies adds no
// allocation of its own. bench_test.go measures each policy
// (BenchmarkPolicy_Execute) and [CircuitBreaker] beside gobreaker called
// directly (BenchmarkCircuitBreaker_Execute); the bench module measures
// each policy and the documented pipeline beside failsafe-go's equivalents
// (BenchmarkResilience_Policy).
package resilience

// Package resilience implements, from the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Fault Tolerance" — circuit
// breakers with their three states, timeouts, fallbacks, graceful
// degradation and chaos engineering — together with "Microservices →
// Circuit Breakers: Prevent cascade failures", "Message Queues → Dead
// Letter Queues" and the retries, bulkheads, hedging and load shedding
// that production clients and servers need around them.
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
//     [FailureRate] (time window), [NewCountWindow] (count window) and
//     [NewSlowCallRate]; [SharedBreaker] shares one state across a fleet
//     through a [BreakerStore] ([MemoryBreakerStore], or redisbreaker.Store
//     on Redis); redisbreaker.DataStore runs gobreaker's own
//     DistributedCircuitBreaker on Redis for comparison.
//   - Timeout Configuration: [Timeout], per attempt or overall.
//   - Fallback Mechanisms: [Fallback].
//   - Graceful Degradation — Cached Responses: [Degrader] over a
//     [StaleSource] (a cache satisfies it; [LastGood] is an in-memory one);
//     Feature Flags: [Switches] and [Switch].
//   - Failover / automatic recovery: [Retry] with [Backoff] (no, full,
//     equal and decorrelated jitter), Retry-After ([ParseRetryAfter]) and a
//     [Budget] that caps a fleet's retries.
//   - Redundancy for latency: [Hedge] ("The Tail at Scale").
//   - Microservices — fault isolation: [Bulkhead].
//   - Throughput under overload: [AdaptiveThrottle] (client side, the SRE
//     book's formula) and [LoadShedder] (server side, an adaptive
//     concurrency limit — [ShedAIMD] or [ShedGradient] — with an HTTP
//     middleware answering 503 + Retry-After).
//   - Dead Letter Queues: [DLQWorker] over a [MessageQueue]
//     ([MemoryQueue], or redisqueue.Queue on Redis Streams).
//   - Chaos Engineering — Failure Injection, Latency Monkey:
//     [FaultInjector] for functions, HTTP handlers and HTTP clients.
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
// [LoadShedder], [FaultInjector], [Switch]) are a [Guard], which [Guarded]
// turns into a Policy of any result type.
//
// # Configuration
//
// Options are structs whose zero fields take documented defaults, except
// for the decisions a default would hide: how many times a call may run
// ([RetryOptions].MaxAttempts, [DLQWorkerOptions].MaxAttempts — retrying is
// safe only for idempotent calls), how much extra load retries may add (the
// ratio of [NewBudget]), how many calls a [Bulkhead] admits, and how long a
// [Timeout] waits. Those are required, and 0 is an error, not a default.
// Every bad value — zero or negative attempts, a [Backoff] Max below its
// Base, a [Jitter] outside its range, a budget ratio outside [0, 1], a nil
// function — is an error wrapping [ErrInvalidConfig] that names the value;
// no constructor or Execute panics on bad input.
//
// Make each policy, guard and worker with its constructor. Called on a
// value its constructor did not make (the zero value or a nil pointer),
// Execute, Enter, [Bulkhead.Acquire], [SharedBreaker.Allow] and
// [DLQWorker.Run] return at once an error wrapping [ErrInvalidConfig]
// that says so.
// [MemoryQueue], [MemoryBreakerStore], [Switches] and [FaultInjector]
// (which then injects nothing) work from their zero value.
//
// No call blocks on a misuse: a [Bulkhead] hands out slots as
// [BulkheadSlot] values whose Release frees the slot once however often it
// is called, so there is no release without an acquire to wait on.
//
// # Errors
//
// A policy that rejects a call or gives up returns a [*PolicyError] naming
// the policy, wrapping a sentinel ([ErrOpen], [ErrBulkheadFull],
// [ErrTimeout], [ErrRetriesExhausted], [ErrBudgetExhausted], [ErrThrottled],
// [ErrShed], [ErrInjected], [ErrDisabled]) and the underlying cause, so
// errors.Is reaches both. Bad configuration returns an error wrapping
// [ErrInvalidConfig]. Caller cancellation is never counted as a dependency
// failure.
//
// # Time, concurrency, observability
//
// Every type is safe for concurrent use. Time-dependent parts take a Now
// option; [Retry] also takes its Sleep and Rand, and [Timeout] the function
// that derives its deadline ([TimeoutOptions].WithTimeout), so [Retry],
// [Timeout], [Fallback], [Pipeline], [SharedBreaker], a fail-fast
// [Bulkhead] and the [LoadShedder] middleware run unchanged on a
// simulator's virtual time — the trade-off lab (examples/tradeoffs, -only
// resilience) runs them so. The building blocks also have pure or "At"
// forms ([Backoff.Delay], [Budget.TryExtraAt], [AdaptiveThrottle.AllowAt],
// [LoadShedder.TryAcquire]/[LoadShedder.Release], [SharedBreaker.Allow]/
// [SharedBreaker.Done]). [Hedge] starts goroutines on real timers, and
// gobreaker's own timers (behind [CircuitBreaker]) read time.Now; tests
// drive them with testing/synctest. Each stateful policy has a Stats
// method and hooks (state changes, retries, limit changes, dead letters)
// that never run under a lock.
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
//
// # Shared state
//
// Two sub-packages keep state in Redis, so that this package links no
// Redis client: [github.com/sysdesign-go/sysdesign/resilience/redisbreaker]
// (a [BreakerStore] for [SharedBreaker], and gobreaker's SharedDataStore)
// and [github.com/sysdesign-go/sysdesign/resilience/redisqueue] (a
// [MessageQueue] on Redis Streams for [DLQWorker]). Both work on a single
// node, Sentinel or Cluster. The shared breaker is eventually consistent
// across instances — each caches the state for CacheTTL — and fails open
// when its store is unreachable. The dead-letter queue is at least once.
package resilience

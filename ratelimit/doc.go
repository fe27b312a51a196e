// Package ratelimit implements, from the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Security Considerations → Rate
// Limiting" (token bucket, leaky bucket, sliding window, IP-based and
// user-based limits), with "API Design → Rate Limiting: Prevent abuse" and
// "Throughput Optimization → Message Queues → Rate Limiting: Control
// request flow".
//
// The lines a user writes first — a limit per client IP in front of a
// handler:
//
//	keyed, err := ratelimit.NewKeyed(ratelimit.AlgGCRA, ratelimit.KeyedOptions{}, ratelimit.PerSecond(10))
//	mw, err := ratelimit.NewMiddleware(ratelimit.MiddlewareOptions{Limiter: keyed})
//	http.Handle("/", mw.Handler(handler))
//
// One limit for the whole service instead: give the Middleware a Key that
// returns the same key for every request. Which algorithm to prefer:
// [AlgGCRA] (or [AlgTokenBucket], which admits the same) unless a section
// below says why another fits better. Runnable examples:
// ExampleMiddleware, ExampleMiddleware_oneLimit, ExampleTokenBucket and
// the others in this package's documentation, and the program
// examples/ratelimit.
//
// # Algorithms
//
// Six in-memory algorithms share the [Limiter] interface, the methods of
// golang.org/x/time/rate's Limiter — Allow and AllowN to decide now,
// ReserveN to book a future slot, Wait and WaitN to block with a context —
// and return a [Decision] with everything a caller needs: allowed or not,
// the events remaining, when to retry, when the limit resets.
//
//   - [TokenBucket]: bursts up to Burst, then the refill rate; the guide's
//     "smooth rate limiting" holds only over spans longer than a burst.
//     The textbook state: tokens and the time of the last refill.
//   - [LeakyBucket]: the same budget as a meter (AllowN rejects when full)
//     and as a queue that releases events one interval apart
//     ([LeakyBucket.Take], WaitN) — "fixed rate processing".
//   - [FixedWindow]: one counter per calendar window; cheap, but up to twice
//     the limit passes around a boundary.
//   - [SlidingLog]: exact — no window of length Per ever holds more than
//     Events — at 8 bytes per allowed event.
//   - [SlidingWindow]: two counters, the previous window weighted by its
//     overlap: nearly exact at a counter's cost.
//   - [GCRA]: the generic cell rate algorithm; admits exactly what a token
//     bucket admits, from one timestamp, with one compare-and-swap.
//
// [New] picks one by [Algorithm]. [Multi] enforces several limits on one
// key (10/s and 1,000/day) and charges none when any refuses.
//
// # Keys, clients and HTTP
//
// [Keyed] gives each key (IP, user, API key, route) its own limit with
// bounded memory, MaxKeys and idle expiry, for any algorithm: each key's
// state sits inline in one hash table. [ClientIP] finds the client
// address without trusting forwarding headers from untrusted peers, and
// groups IPv6 clients by prefix. [Middleware] answers the excess with 429,
// Retry-After, the IETF RateLimit-Policy and RateLimit fields (or the
// legacy X-RateLimit-* set) and a problem+json body.
//
// # Distributed limits
//
// Package [github.com/sysdesign-go/sysdesign/ratelimit/redislimit] shares
// one limit per key across every instance through Redis (single node,
// Sentinel or Cluster): one Lua script per decision, using the server's
// clock, with a failure policy for when Redis is down. It is a package of
// its own so that the in-memory limiters link no Redis client.
// Per-instance [Keyed] limits behind N instances admit up to N× the
// intended rate; the lab experiment ratelimit-local-vs-global shows how
// much. Both implement [KeyedLimiter], whose Decide takes a context
// rather than a time: a shared store keeps its own clock.
//
// # Time
//
// AllowN means one thing throughout: decide n events at the time given
// (Limiter.AllowN(now, n), [Keyed.AllowN](now, key, n)), so simulations
// and tests control the clock; Allow, Wait and Decide read time.Now, as
// golang.org/x/time/rate does ([KeyedOptions.Now] sets a Keyed's clock),
// and tests of waits run in a testing/synctest bubble.
//
// All types are safe for concurrent use. Nothing in the package starts a
// goroutine, so nothing has a Close. Make limiters with their
// constructors: on a zero value, Allow reports false, every method that
// returns an error returns one wrapping [ErrInvalidConfig] at once, and
// the zero [Middleware] answers 500.
package ratelimit

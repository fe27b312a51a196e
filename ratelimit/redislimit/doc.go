// Package redislimit shares rate limits through Redis: a [Limiter] gives
// every process that uses the same Redis and prefix one limit per key, so
// N instances behind a load balancer admit the limit once, not N times.
//
// Guide: Security Considerations → Rate Limiting (IP-based and user-based
// limits across instances), API Design → Rate Limiting. It is a package of
// its own so that a program using only the in-memory limiters of package
// ratelimit links no Redis client; a [Limiter] is a
// [ratelimit.KeyedLimiter], so [ratelimit.Middleware] takes either.
//
//	lim, err := redislimit.New(client, ratelimit.AlgGCRA, redislimit.Options{Prefix: "api:"}, ratelimit.PerSecond(100))
//	d, err := lim.Decide(ctx, userID, 1) // d.Allowed, d.RetryAfter, d.Remaining
//
// It takes a [redis.UniversalClient], so it works on a single node, on
// Sentinel and on Redis Cluster. The hash-tag rule it relies on: each
// decision is one Lua script over one Redis key, Prefix+"{key}", whose hash
// tag is the caller's key. A decision never needs two keys in one slot, so
// any prefix works, and on a cluster the keys spread over the slots. (A
// prefix with a {tag} of its own would still work, but would put every key
// on one slot, and so one node.)
//
// Each decision uses the Redis server's clock and is bounded by
// [Options.Timeout]; when Redis fails, [Options.OnFailure] decides
// ([FailOpen] or [FailClosed]).
package redislimit

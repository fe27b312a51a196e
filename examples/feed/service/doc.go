// Package service is the social media feed of the guide System Design
// Round — Principal Engineer Interview Preparation, "Real-World System
// Designs → 3. Social Media Feed", as an HTTP service on Redis built from
// this library's packages. Each key consideration of the guide has its
// part:
//
//   - Feed generation, real-time vs batch: a post is stored at once and
//     fanned out by background workers. Where it goes is the fanout.Strategy:
//     fanout.OnWrite pushes its ID into every follower's home timeline (a
//     Redis sorted set capped at [Config.TimelineCap] entries, 800 like
//     Twitter's), fanout.OnRead pushes nothing and merges the followees'
//     recent posts when a home timeline is read, and fanout.Hybrid pushes for
//     authors with fewer followers than its threshold and merges the
//     others (the celebrity problem) at read time.
//   - Consistency: followers see a post eventually — when its fan-out job
//     has run, or at once when it is merged at read time; its author sees
//     it at once (read-your-writes), because a home timeline always
//     merges its reader's own recent posts.
//   - Durability: posts are the source of truth, kept in Redis hashes
//     beside their author's post index (one hash tag per author, so a
//     post and its index are written by one script on one Cluster slot);
//     timelines are derived and can be rebuilt. A post is acknowledged
//     only once stored; its fan-out job is queued in a Redis Stream
//     ([redisdlq]) and run at least once by a [dlq.Worker], with retries
//     and a dead-letter stream. A client that resends a post with the
//     same Idempotency-Key gets the stored post back, not a second one.
//
// The library inside: users' data can be spread over [Config.Shards] by
// a consistent-hash ring ([shard.NewRing]) on the user ID — a user's posts,
// follow lists and home timeline on one shard, a post found from its ID;
// the fan-out queue is split into [Config.Queues]
// Streams, and each author's posts are placed on one of them by
// [shard.Maglev], so an author's jobs run in order while the queues spread
// over a Cluster's slots and workers; a circuit breaker and a timeout
// around Redis ([resilience]); per-user limits on writes with the IETF
// RateLimit headers ([ratelimit]); follower counts cached in process
// ([cache.Memory]); Prometheus metrics on /metrics.
//
// The API is versioned under /api/v1 and described by an OpenAPI document
// at /api/v1/openapi.json; errors are problem+json (package httpsec).
package service

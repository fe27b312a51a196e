// Package service is the shop of the guide's "Real-World System Designs →
// 4. E-commerce Platform" as an HTTP service composed from this
// repository's packages: the catalog (search and filtering, package
// catalog), session carts in Redis, checkout as a saga over inventory,
// payments and shipping (packages inventory, payment, order), the order
// list (a CQRS read model fed by an outbox), and "bought together"
// recommendations from an event consumer.
//
// The library inside: lb balances several instances ([Start] with
// Instances > 1), ratelimit limits checkouts per user (with the IETF
// RateLimit headers), shard places orders on their shard (one event log
// per shard), consensus or Redis keeps the stock, cache serves product
// pages, resilience wraps the payment provider. /metrics shows business
// metrics (orders, revenue, compensations) beside technical ones.
//
// Bad input — negative or huge quantities, unknown products, another
// session's cart, an empty cart at checkout, a replayed or mismatched
// idempotency key, malformed JSON, a callback for an unknown order — is
// answered with a 4xx problem+json naming the value, and nothing is half
// applied.
package service

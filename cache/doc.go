// Package cache implements GUIDE.md, "Database Design → Caching
// Strategies": L1 in-process and L2 distributed (Redis) caches, the
// cache-aside, write-through, write-behind and refresh-ahead patterns, and
// TTL, LRU, LFU, manual and event-driven invalidation; also "Latency
// Optimization → Caching" and "Throughput Optimization → Caching".
package cache

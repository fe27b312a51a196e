// Package shard implements GUIDE.md, "Database Design → Database
// Sharding": horizontal and vertical sharding; hash-based (modulo and
// consistent hashing), range-based and directory-based placement;
// cross-shard queries and rebalancing; also "Throughput Optimization →
// Database Sharding".
package shard

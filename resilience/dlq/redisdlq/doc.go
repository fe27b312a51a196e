// Package redisdlq is a dead-letter-capable message queue on Redis
// Streams: [Queue] is a [dlq.Queue] for
// [dlq.Worker], with a consumer group, recovery of a restarted
// consumer's unfinished messages, takeover of a dead consumer's ones
// (XAUTOCLAIM) and a dead-letter stream.
//
// Guide: Performance Considerations → Throughput Optimization → Message
// Queues → Dead Letter Queues: Handle failed messages. It is separate from
// package dlq so that a program using only the in-memory queue links no
// Redis client.
//
//	q, err := redisdlq.New(ctx, client, "orders", redisdlq.Options{Consumer: hostname})
//	w, err := dlq.NewWorker(dlq.WorkerOptions{Queue: q, Handler: handle, MaxAttempts: 5})
//	err = w.Run(ctx)
//
// A [Queue] takes a [redis.UniversalClient], so it works on a single node,
// on Sentinel and on Redis Cluster. The hash-tag rule it relies on: Retry
// and Dead are MULTI/EXEC transactions over the stream <prefix>{<name>}:stream
// and the dead-letter stream <prefix>{<name>}:dead, which share a slot
// through the {name} tag. [New] refuses an empty name, and a name or
// prefix with a brace, with an error wrapping [resilience.ErrInvalidConfig]:
// any of them would let a Cluster put the two streams on different slots.
package redisdlq

// Package dlq implements, from the guide System Design Round — Principal
// Engineer Interview Preparation, "Message Queues → Dead Letter Queues:
// Handle failed messages": a [Worker] runs a handler over an at-least-once
// [Queue], requeues messages that fail and moves those that keep failing
// to a dead-letter sink with the reason, so a poison message costs a few
// attempts instead of blocking the queue or being lost.
//
//	w, err := dlq.NewWorker(dlq.WorkerOptions{Queue: q, Handler: handle, MaxAttempts: 5})
//	go w.Run(ctx)
//	...
//	err = w.Close(ctx) // finish the messages in hand, receive no more
//
// [MemoryQueue] keeps the queue in process memory; package
// [github.com/sysdesign-go/sysdesign/resilience/dlq/redisdlq] keeps it in
// a Redis Stream with a consumer group, so workers in many processes share
// it and a restarted or dead consumer's messages are delivered again. It
// is a package of its own so that a program using only the in-memory
// queue links no Redis client.
//
// Bad configuration returns an error wrapping resilience.ErrInvalidConfig
// that names the value; MaxAttempts has no default, because each extra
// delivery runs the handler again. A Worker its constructor did not make
// returns such an error from Run, ProcessOne and Close; a [MemoryQueue]
// works from its zero value.
package dlq

package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Relay publishes a [Log]'s outbox to a Redis Stream: it adds each queued
// event to the stream, then removes it from the outbox. A crash between the
// two publishes the event again on restart — at least once, never lost —
// so consumers must dedupe (see [Consume]). Relay is safe for concurrent
// use, but one relay per log keeps the stream in order.
type Relay struct {
	log    *Log
	client redis.UniversalClient
	stream string

	// afterPublish, if set, runs between publishing and acknowledging a
	// batch; a test returns an error from it to crash the relay there.
	afterPublish func() error
}

// NewRelay returns a relay from log to the stream named stream.
func NewRelay(log *Log, client redis.UniversalClient, stream string) *Relay {
	return &Relay{log: log, client: client, stream: stream}
}

// Flush publishes everything in the outbox and returns how many events it
// published.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	total := 0
	for {
		batch, err := r.log.pending(100)
		if err != nil || len(batch) == 0 {
			return total, err
		}
		pipe := r.client.Pipeline()
		for _, e := range batch {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: r.stream, Values: []string{"event", string(e.event)}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return total, fmt.Errorf("order: relay to %s: %w", r.stream, err)
		}
		if r.afterPublish != nil {
			if err := r.afterPublish(); err != nil {
				return total, err
			}
		}
		if err := r.log.ack(batch); err != nil {
			return total, err
		}
		total += len(batch)
	}
}

// Run flushes after every append and every interval (to retry after an
// error) until ctx ends, and returns ctx's error.
func (r *Relay) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_, _ = r.Flush(ctx) // a failed flush is retried on the next tick
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.log.wake:
		case <-t.C:
		}
	}
}

// Consume reads stream as member consumer of group (creating the group at
// the stream's start if needed) and calls handle for every event, until ctx
// ends. An event is acknowledged only after handle returns nil, so a
// consumer that crashes or fails gets it again (its pending entries are
// read first): handle must be idempotent. It returns ctx's error, or a
// Redis error other than a timeout.
func Consume(ctx context.Context, client redis.UniversalClient, stream, group, consumer string, handle func(context.Context, Event) error) error {
	err := client.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("order: consumer group %s on %s: %w", group, stream, err)
	}
	pendingFirst := true
	for ctx.Err() == nil {
		start := ">"
		if pendingFirst {
			start = "0"
		}
		res, err := client.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: consumer, Streams: []string{stream, start}, Count: 100, Block: 100 * time.Millisecond,
		}).Result()
		if errors.Is(err, redis.Nil) {
			pendingFirst = false
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			// A broken connection: back off briefly, then reread pending.
			pendingFirst = true
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		failed := false
		for _, s := range res {
			if failed {
				break
			}
			if pendingFirst && len(s.Messages) == 0 {
				pendingFirst = false
			}
			for _, m := range s.Messages {
				var e Event
				raw, _ := m.Values["event"].(string)
				if err := json.Unmarshal([]byte(raw), &e); err != nil {
					// A message that is not an event is skipped, not retried forever.
					_ = client.XAck(ctx, stream, group, m.ID).Err()
					continue
				}
				// Stop at a failure, so events are applied in stream order.
				if failed = handle(ctx, e) != nil; failed {
					break
				}
				_ = client.XAck(ctx, stream, group, m.ID).Err()
			}
		}
		if failed {
			pendingFirst = true
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return ctx.Err()
}

// EventKey is an event's identity, for consumers that dedupe.
func EventKey(e Event) string { return e.Order + "#" + strconv.Itoa(e.Seq) }

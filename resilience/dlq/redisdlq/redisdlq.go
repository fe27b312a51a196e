package redisdlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/dlq"
)

// Queue is a [dlq.Queue] on a Redis Stream with a consumer
// group: Publish is XADD, Receive is XREADGROUP (this consumer's pending
// entries first after Recover, then new ones, blocking at most 100 ms at a
// time so that a cancelled context ends it), Ack is XACK + XDEL, and
// Retry and Dead are MULTI/EXEC transactions that XADD the message to the
// stream again (or to the dead-letter stream) and XACK + XDEL the old
// entry. The stream keys share the hash tag {name}, so the transactions
// stay in one slot on Redis Cluster. A worker that restarts
// with the same consumer name gets back every message it had received but
// not finished.
//
// A Queue is safe for concurrent use by one consumer's workers.
type Queue struct {
	client   redis.UniversalClient
	stream   string
	dead     string
	group    string
	consumer string
	claim    time.Duration

	mu         sync.Mutex
	readingOld bool   // guarded by mu: read this consumer's pending entries first,
	oldAfter   string // those after this entry ID
}

// Options configure a [Queue].
type Options struct {
	// Prefix is put before the keys <prefix>{<name>}:stream and
	// <prefix>{<name>}:dead. Default "". It must not contain braces.
	Prefix string
	// Group is the consumer group. Default "workers".
	Group string
	// Consumer names this consumer; reuse it across restarts to recover
	// its unfinished messages. Default "worker-1".
	Consumer string
	// ClaimIdle, if set, makes Receive take over messages that another
	// consumer received but has not acknowledged for this long (XAUTOCLAIM):
	// the consumer died and is not coming back under its name. Default 0:
	// never. Set it well above the longest handler run, or a slow consumer's
	// message is processed twice.
	ClaimIdle time.Duration
}

// New returns the queue name on client, creating the stream and group if
// needed. A name that is empty or has a brace, or a prefix with a brace, is
// refused with an error wrapping [resilience.ErrInvalidConfig]: the name
// is the hash tag that keeps both streams in one Redis Cluster slot.
func New(ctx context.Context, client redis.UniversalClient, name string, opts Options) (*Queue, error) {
	if opts.Group == "" {
		opts.Group = "workers"
	}
	if opts.Consumer == "" {
		opts.Consumer = "worker-1"
	}
	switch c, isClient := client.(*redis.Client); {
	case client == nil || isClient && c == nil:
		return nil, fmt.Errorf("%w: redisdlq.New needs a client", resilience.ErrInvalidConfig)
	case name == "" || strings.ContainsAny(name, "{}"):
		return nil, fmt.Errorf("%w: queue name %q must be non-empty and contain no braces: it is the {hash tag} that keeps the stream and the dead-letter stream in one Redis Cluster slot, as the transactions of Retry and Dead need", resilience.ErrInvalidConfig, name)
	case strings.ContainsAny(opts.Prefix, "{}"):
		return nil, fmt.Errorf("%w: Redis key prefix %q contains a brace, which would replace the queue name as the keys' {hash tag}, so a Cluster could put the stream and the dead-letter stream on different slots", resilience.ErrInvalidConfig, opts.Prefix)
	case opts.ClaimIdle < 0:
		return nil, fmt.Errorf("%w: Options.ClaimIdle must not be negative, got %v", resilience.ErrInvalidConfig, opts.ClaimIdle)
	}
	tag := opts.Prefix + "{" + name + "}:"
	q := &Queue{client: client, stream: tag + "stream", dead: tag + "dead", group: opts.Group, consumer: opts.Consumer, claim: opts.ClaimIdle, readingOld: true, oldAfter: "0"}
	err := client.XGroupCreateMkStream(ctx, q.stream, q.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return nil, fmt.Errorf("redisdlq: creating stream group %q: %w", q.stream, err)
	}
	return q, nil
}

func messageValues(m dlq.Message) map[string]any {
	return map[string]any{"body": m.Body, "attempts": m.Attempts, "error": m.LastError}
}

func parseMessage(x redis.XMessage) dlq.Message {
	m := dlq.Message{ID: x.ID}
	if s, ok := x.Values["body"].(string); ok {
		m.Body = []byte(s)
	}
	if s, ok := x.Values["attempts"].(string); ok {
		m.Attempts, _ = strconv.Atoi(s)
	}
	m.LastError, _ = x.Values["error"].(string)
	return m
}

// Publish implements [dlq.Queue].
func (q *Queue) Publish(ctx context.Context, body []byte) (string, error) {
	if q == nil || q.client == nil {
		return "", errNotMade()
	}
	return q.client.XAdd(ctx, &redis.XAddArgs{Stream: q.stream, Values: messageValues(dlq.Message{Body: body})}).Result()
}

// receiveOld returns this consumer's next pending entry while it is
// reading those; ok is false once they are exhausted.
func (q *Queue) receiveOld(ctx context.Context) (dlq.Message, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.readingOld {
		return dlq.Message{}, false, nil
	}
	res, err := q.client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: q.group, Consumer: q.consumer, Streams: []string{q.stream, q.oldAfter}, Count: 1, Block: -1}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return dlq.Message{}, false, err
	}
	// (A read of pending entries never blocks, whatever Block says, and
	// answers its stream even when it has none: len(res) >= 0 reads alike.)
	if len(res) > 0 && len(res[0].Messages) > 0 {
		x := res[0].Messages[0]
		q.oldAfter = x.ID
		return parseMessage(x), true, nil
	}
	q.readingOld = false
	return dlq.Message{}, false, nil
}

// Receive implements [dlq.Queue].
func (q *Queue) Receive(ctx context.Context, wait time.Duration) (dlq.Message, bool, error) {
	if q == nil || q.client == nil {
		return dlq.Message{}, false, errNotMade()
	}
	// This consumer's pending entries (after Recover, or at start) are
	// read one at a time past the last one returned, under mu, so
	// concurrent Receives on one handle never return the same entry.
	if m, ok, err := q.receiveOld(ctx); ok || err != nil {
		return m, ok, err
	}
	if q.claim > 0 {
		xs, _, err := q.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: q.stream, Group: q.group, MinIdle: q.claim, Start: "0-0", Count: 1, Consumer: q.consumer}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return dlq.Message{}, false, err
		}
		if len(xs) > 0 {
			return parseMessage(xs[0]), true, nil
		}
	}
	// go-redis ends a blocking read at its timeout, not when ctx is
	// cancelled, so the wait is cut into blocks of at most maxBlock with
	// ctx checked between them: a cancelled ctx (a Worker's Close) ends
	// Receive within maxBlock.
	until := time.Now().Add(wait)
	for {
		block := time.Duration(-1) // no BLOCK argument: return at once
		if wait > 0 {
			// At least 1 ms: BLOCK 0 would wait forever. (>= above would
			// only make a zero wait a 1 ms one.)
			block = max(min(time.Until(until), maxBlock), time.Millisecond)
		}
		res, err := q.client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: q.group, Consumer: q.consumer, Streams: []string{q.stream, ">"}, Count: 1, Block: block}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return dlq.Message{}, false, err
		}
		// (A read of new entries answers a stream only with an entry, so
		// len(res[0].Messages) >= 0 reads alike; and a zero wait has
		// reached until, so wait < 0 below ends alike.)
		if len(res) > 0 && len(res[0].Messages) > 0 {
			return parseMessage(res[0].Messages[0]), true, nil
		}
		if err := ctx.Err(); err != nil {
			return dlq.Message{}, false, err
		}
		if wait <= 0 || !time.Now().Before(until) {
			return dlq.Message{}, false, nil
		}
	}
}

// maxBlock bounds one blocking read of Receive, and so how long a
// cancelled ctx can go unnoticed.
const maxBlock = 100 * time.Millisecond

// Ack implements [dlq.Queue].
func (q *Queue) Ack(ctx context.Context, m dlq.Message) error {
	if q == nil || q.client == nil {
		return errNotMade()
	}
	_, err := q.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, q.stream, q.group, m.ID)
		p.XDel(ctx, q.stream, m.ID)
		return nil
	})
	return err
}

// Retry implements [dlq.Queue].
func (q *Queue) Retry(ctx context.Context, m dlq.Message, reason string) error {
	if q == nil || q.client == nil {
		return errNotMade()
	}
	next := m
	next.Attempts++
	next.LastError = reason
	_, err := q.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: q.stream, Values: messageValues(next)})
		p.XAck(ctx, q.stream, q.group, m.ID)
		p.XDel(ctx, q.stream, m.ID)
		return nil
	})
	return err
}

// Dead implements [dlq.Queue].
func (q *Queue) Dead(ctx context.Context, m dlq.Message, reason string, at time.Time) error {
	if q == nil || q.client == nil {
		return errNotMade()
	}
	v := messageValues(m)
	v["attempts"] = m.Attempts + 1
	v["error"] = reason
	v["reason"] = reason
	v["source_id"] = m.ID
	v["at"] = at.UnixMilli()
	_, err := q.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: q.dead, Values: v})
		p.XAck(ctx, q.stream, q.group, m.ID)
		p.XDel(ctx, q.stream, m.ID)
		return nil
	})
	return err
}

// DeadLetters implements [dlq.Queue]; n ≤ 0 returns none.
func (q *Queue) DeadLetters(ctx context.Context, n int) ([]dlq.DeadLetter, error) {
	if q == nil || q.client == nil {
		return nil, errNotMade()
	}
	if n <= 0 {
		return nil, nil
	}
	xs, err := q.client.XRangeN(ctx, q.dead, "-", "+", int64(n)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]dlq.DeadLetter, 0, len(xs))
	for _, x := range xs {
		dl := dlq.DeadLetter{Message: parseMessage(x)}
		if id, ok := x.Values["source_id"].(string); ok {
			dl.ID = id
		}
		dl.Reason, _ = x.Values["reason"].(string)
		if s, ok := x.Values["at"].(string); ok {
			if msec, err := strconv.ParseInt(s, 10, 64); err == nil {
				dl.At = time.UnixMilli(msec)
			}
		}
		out = append(out, dl)
	}
	return out, nil
}

// Recover implements [dlq.Queue]: the next Receives return this
// consumer's pending (delivered, unacknowledged) entries first.
func (q *Queue) Recover(context.Context) error {
	if q == nil || q.client == nil {
		return errNotMade()
	}
	q.mu.Lock()
	q.readingOld, q.oldAfter = true, "0"
	q.mu.Unlock()
	return nil
}

func errNotMade() error {
	return fmt.Errorf("%w: redisdlq.Queue not made by redisdlq.New", resilience.ErrInvalidConfig)
}

var _ dlq.Queue = (*Queue)(nil)

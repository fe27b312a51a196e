package redisdlq_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/dlq"
	"github.com/sysdesign-go/sysdesign/resilience/dlq/redisdlq"
	"github.com/sysdesign-go/sysdesign/resilience/internal/queuetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func must[P any](p P, err error) P {
	if err != nil {
		panic(err)
	}
	return p
}

// A worker retries a flaky message, dead-letters a poison one after
// MaxAttempts (the Dead transaction spans the stream and the dead-letter
// stream: one slot on the cluster), and acknowledges the rest.
func TestWorker_DeadLettersPoisonMessages(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		q := must(redisdlq.New(context.Background(), db.Client, "orders", redisdlq.Options{Prefix: db.Prefix}))
		queuetest.DeadLettersPoisonMessages(t, q)
	})
}

// Messages received and never acknowledged come back after Recover in
// publication order.
func TestQueue_RecoverKeepsOrder(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		queuetest.RecoverKeepsOrder(t, must(redisdlq.New(context.Background(), db.NewClient(t), "orders", redisdlq.Options{Prefix: db.Prefix})))
	})
}

// Receive returns at once when told not to wait, and waits across its
// blocking reads for a message when told to.
func TestQueue_ReceiveWaits(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		queuetest.ReceiveWaits(t, must(redisdlq.New(context.Background(), db.NewClient(t), "orders", redisdlq.Options{Prefix: db.Prefix})))
	})
}

// A worker stopped in the middle of a message loses nothing: a new worker
// on the same queue (same consumer, new connection) gets the message
// again, and every message is processed exactly once.
func TestWorker_RestartLosesNothing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		queuetest.RestartLosesNothing(t, func() dlq.Queue {
			return must(redisdlq.New(context.Background(), db.NewClient(t), "orders", redisdlq.Options{Prefix: db.Prefix}))
		})
	})
}

// Close finishes the message in hand and receives no more; a Close
// whose context ends first says what was left.
func TestWorker_CloseFinishesTheMessageInHand(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		queuetest.CloseFinishesTheMessageInHand(t, must(redisdlq.New(context.Background(), db.Client, "orders", redisdlq.Options{Prefix: db.Prefix})))
	})
}

// Close ends a worker that has handled its message and goes back to wait.
func TestWorker_CloseStopsAnIdleWorker(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		queuetest.CloseStopsAnIdleWorker(t, must(redisdlq.New(context.Background(), db.NewClient(t), "orders", redisdlq.Options{Prefix: db.Prefix})))
	})
}

// Close ends a worker whose XREADGROUP is already blocked in Redis (go-redis
// does not end a blocking read when its context is cancelled), well
// before the read's hour.
func TestWorker_CloseEndsABlockedRead(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		name := strings.NewReplacer(":", "-", "/", "-").Replace(db.Prefix) + "worker"
		var client redis.UniversalClient
		if db.Cluster {
			client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: db.Addrs, ClientName: name})
		} else {
			client = redis.NewClient(&redis.Options{Addr: db.Addr, ClientName: name})
		}
		defer client.Close()
		q := must(redisdlq.New(context.Background(), client, "orders", redisdlq.Options{Prefix: db.Prefix}))
		w, err := dlq.NewWorker(dlq.WorkerOptions{Queue: q, MaxAttempts: 1, Wait: time.Hour, Handler: func(context.Context, dlq.Message) error { return nil }})
		require.NoError(t, err)
		ran := make(chan error, 1)
		go func() { ran <- w.Run(context.Background()) }()
		require.Eventually(t, func() bool { return blocked(t, db, name) }, 10*time.Second, 5*time.Millisecond, "the worker never blocked in XREADGROUP")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, w.Close(ctx))
		require.NoError(t, <-ran)
	})
}

// blocked reports whether a connection named name is blocked in a command
// on any node of db.
func blocked(t *testing.T, db *redistest.DB, name string) bool {
	ctx := context.Background()
	list := func(c *redis.Client) bool {
		out, err := c.ClientList(ctx).Result()
		require.NoError(t, err)
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if slices.Contains(f, "name="+name) && slices.ContainsFunc(f, func(s string) bool {
				return strings.HasPrefix(s, "flags=") && strings.Contains(s, "b")
			}) {
				return true
			}
		}
		return false
	}
	if !db.Cluster {
		return list(db.Client.(*redis.Client))
	}
	var mu sync.Mutex
	found := false
	require.NoError(t, db.Client.(*redis.ClusterClient).ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		b := list(c)
		mu.Lock()
		found = found || b
		mu.Unlock()
		return nil
	}))
	return found
}

// A consumer that dies for good leaves its messages pending; another
// consumer with ClaimIdle takes them over.
func TestQueue_ClaimsAbandonedMessages(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := context.Background()
		dead := must(redisdlq.New(ctx, db.Client, "jobs", redisdlq.Options{Prefix: db.Prefix, Consumer: "a"}))
		_, err := dead.Publish(ctx, []byte("job-1"))
		require.NoError(t, err)
		m, ok, err := dead.Receive(ctx, 10*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, "job-1", string(m.Body)) // consumer a dies here

		// A consumer without ClaimIdle never takes another's message.
		c := must(redisdlq.New(ctx, db.Client, "jobs", redisdlq.Options{Prefix: db.Prefix, Consumer: "c"}))
		_, ok, err = c.Receive(ctx, 5*time.Millisecond)
		require.NoError(t, err)
		assert.False(t, ok, "a consumer without ClaimIdle claimed a's message")

		b := must(redisdlq.New(ctx, db.Client, "jobs", redisdlq.Options{Prefix: db.Prefix, Consumer: "b", ClaimIdle: 300 * time.Millisecond}))
		_, ok, err = b.Receive(ctx, 5*time.Millisecond)
		require.NoError(t, err)
		assert.False(t, ok, "not idle long enough yet")
		// Once the message has been idle 300 ms, b claims it; each Receive
		// blocks 20 ms, so the loop polls until its deadline.
		var got dlq.Message
		for deadline := time.Now().Add(10 * time.Second); ; {
			got, ok, err = b.Receive(ctx, 20*time.Millisecond)
			require.NoError(t, err)
			if ok {
				break
			}
			require.True(t, time.Now().Before(deadline), "b never claimed the abandoned message")
		}
		assert.Equal(t, "job-1", string(got.Body))
		require.NoError(t, b.Ack(ctx, got))
		_, ok, err = b.Receive(ctx, 5*time.Millisecond)
		require.NoError(t, err)
		assert.False(t, ok, "nothing left")
	})
}

// Each consumer group reads every message of the stream: handles on one
// queue in two groups both receive a message none has acknowledged. A
// handle without a Group joins "workers".
func TestQueue_GroupsEachReadEveryMessage(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := context.Background()
		open := func(group string) *redisdlq.Queue {
			return must(redisdlq.New(ctx, db.Client, "events", redisdlq.Options{Prefix: db.Prefix, Group: group}))
		}
		billing, audit := open("billing"), open("audit")
		_, err := billing.Publish(ctx, []byte("paid"))
		require.NoError(t, err)
		for name, q := range map[string]*redisdlq.Queue{"billing": billing, "audit": audit} {
			m, ok, err := q.Receive(ctx, time.Second)
			require.NoError(t, err)
			require.True(t, ok, name)
			assert.Equal(t, "paid", string(m.Body), name)
		}
		open("")
		groups, err := db.Client.XInfoGroups(ctx, db.Prefix+"{events}:stream").Result()
		require.NoError(t, err)
		var names []string
		for _, g := range groups {
			names = append(names, g.Name)
		}
		assert.ElementsMatch(t, []string{"audit", "billing", "workers"}, names)
	})
}

// Many queues on one cluster: each queue's two streams share the slot of
// its name's tag, the queues spread over the slots, and each keeps its own
// messages and dead letters.
func TestQueue_ManyQueuesAcrossSlots(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := context.Background()
		slots := map[int64]bool{}
		var queues []*redisdlq.Queue
		for i := range 12 {
			name := "q" + strconv.Itoa(i)
			q := must(redisdlq.New(ctx, db.Client, name, redisdlq.Options{Prefix: db.Prefix}))
			queues = append(queues, q)
			_, err := q.Publish(ctx, []byte(name))
			require.NoError(t, err)
			if db.Cluster {
				a, err := db.Client.ClusterKeySlot(ctx, db.Prefix+"{"+name+"}:stream").Result()
				require.NoError(t, err)
				b, err := db.Client.ClusterKeySlot(ctx, db.Prefix+"{"+name+"}:dead").Result()
				require.NoError(t, err)
				require.Equal(t, a, b, "a queue's streams share a slot")
				slots[a] = true
			}
		}
		for i, q := range queues {
			m, ok, err := q.Receive(ctx, 10*time.Millisecond)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, "q"+strconv.Itoa(i), string(m.Body))
			require.NoError(t, q.Dead(ctx, m, "bad", time.UnixMilli(1_700_000_000_000)))
			dl, err := q.DeadLetters(ctx, 10)
			require.NoError(t, err)
			require.Len(t, dl, 1, "queue %d", i)
			assert.Equal(t, m.ID, dl[0].ID)
			assert.Equal(t, time.UnixMilli(1_700_000_000_000), dl[0].At)
		}
		if db.Cluster {
			assert.Greater(t, len(slots), 8, "the queues spread over the cluster's slots")
		}
	})
}

// A name or prefix that would put a queue's two streams on different
// Cluster slots is refused with an error naming it.
func TestNew_BadInput(t *testing.T) {
	var nilClient *redis.Client
	_, err := redisdlq.New(context.Background(), nil, "q", redisdlq.Options{})
	assert.ErrorIs(t, err, resilience.ErrInvalidConfig)
	_, err = redisdlq.New(context.Background(), nilClient, "q", redisdlq.Options{})
	assert.ErrorIs(t, err, resilience.ErrInvalidConfig)

	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := context.Background()
		for _, name := range []string{"", "a{b}", "}x", "{"} {
			_, err := redisdlq.New(ctx, db.Client, name, redisdlq.Options{Prefix: db.Prefix})
			require.ErrorIs(t, err, resilience.ErrInvalidConfig, "name %q", name)
			assert.ErrorContains(t, err, strconv.Quote(name))
			assert.ErrorContains(t, err, "slot")
		}
		for _, prefix := range []string{db.Key("{app}:"), db.Key("a{"), db.Key("}")} {
			_, err := redisdlq.New(ctx, db.Client, "q", redisdlq.Options{Prefix: prefix})
			require.ErrorIs(t, err, resilience.ErrInvalidConfig, prefix)
			assert.ErrorContains(t, err, strconv.Quote(prefix))
			assert.ErrorContains(t, err, "slot")
		}
		_, err := redisdlq.New(ctx, db.Client, "q", redisdlq.Options{Prefix: db.Prefix, ClaimIdle: -1})
		assert.ErrorIs(t, err, resilience.ErrInvalidConfig)
		if db.Cluster {
			// Why: the name "}x" gives an empty tag, so Redis hashes each
			// whole key and the two streams land on different slots, where
			// the Dead transaction would fail.
			a, err := db.Client.ClusterKeySlot(ctx, db.Prefix+"{}x}:stream").Result()
			require.NoError(t, err)
			b, err := db.Client.ClusterKeySlot(ctx, db.Prefix+"{}x}:dead").Result()
			require.NoError(t, err)
			require.NotEqual(t, a, b)
		}
	})
}

// A Queue its constructor did not make fails clearly.
func TestZeroQueueFailsClearly(t *testing.T) {
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"Publish":     func() error { var q redisdlq.Queue; _, err := q.Publish(ctx, nil); return err },
		"Receive":     func() error { var q redisdlq.Queue; _, _, err := q.Receive(ctx, 0); return err },
		"Ack":         func() error { var q redisdlq.Queue; return q.Ack(ctx, dlq.Message{}) },
		"Retry":       func() error { var q redisdlq.Queue; return q.Retry(ctx, dlq.Message{}, "") },
		"Dead":        func() error { var q redisdlq.Queue; return q.Dead(ctx, dlq.Message{}, "", time.Time{}) },
		"DeadLetters": func() error { var q redisdlq.Queue; _, err := q.DeadLetters(ctx, 1); return err },
		"nil Recover": func() error { var q *redisdlq.Queue; return q.Recover(ctx) },
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = call() })
			require.ErrorIs(t, err, resilience.ErrInvalidConfig)
			assert.ErrorContains(t, err, "not made by")
		})
	}
}

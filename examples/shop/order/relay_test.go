package order

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// consumeUntil runs Consume in the background until done reports true
// (polled briefly) and stops it.
func consumeUntil(t *testing.T, f *fixture, stream, group string, handle func(context.Context, Event) error, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = Consume(ctx, f.db.Client, stream, group, "c1", handle) })
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for !done() {
		require.True(t, time.Now().Before(deadline), "consumer did not catch up")
		time.Sleep(5 * time.Millisecond)
	}
}

// The relay dies after publishing a batch and before marking it sent. On
// restart (the log reopened from disk) it publishes the batch again, so
// the stream holds every event twice — and the idempotent read model
// applies each once: the order counts once, its amount is spent once.
func TestOutboxRedeliversAndConsumerAppliesOnce(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	stream := f.db.Key("events")
	o, err := f.orchestrator().Place(ctx, "o1", "ann", twoBooks)
	require.NoError(t, err)
	require.Equal(t, StatusDone, o.Status)

	relay := NewRelay(f.log, f.db.Client, stream)
	relay.afterPublish = func() error { return errors.New("relay killed") }
	_, err = relay.Flush(ctx)
	require.ErrorContains(t, err, "relay killed")

	f.reopen(t)
	n, err := NewRelay(f.log, f.db.Client, stream).Flush(ctx)
	require.NoError(t, err)
	assert.Equal(t, o.Version, n, "every event published again")
	length, err := f.db.Client.XLen(ctx, stream).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(2*o.Version), length, "at least once: each event twice")
	n, err = NewRelay(f.log, f.db.Client, stream).Flush(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "the outbox is empty once acknowledged")

	list := NewOrderList(f.db.Client, f.db.Key("list:"))
	var handled int
	var mu sync.Mutex
	consumeUntil(t, f, stream, "list", func(ctx context.Context, e Event) error {
		mu.Lock()
		handled++
		mu.Unlock()
		return list.Apply(ctx, e)
	}, func() bool { mu.Lock(); defer mu.Unlock(); return handled == 2*o.Version })

	totals, err := list.Totals(ctx, "ann")
	require.NoError(t, err)
	assert.Equal(t, Totals{Orders: 1, Spent: o.Amount()}, totals, "applied once")
	got, next, err := list.List(ctx, "ann", "", 10)
	require.NoError(t, err)
	assert.Empty(t, next)
	require.Len(t, got, 1)
	assert.Equal(t, Summary{ID: "o1", Status: StatusDone, Amount: 3000,
		Created: o.Created.Truncate(time.Millisecond), Updated: o.Updated.Truncate(time.Millisecond)}, got[0], "the read model keeps milliseconds")
}

// A handler that fails leaves the event unacknowledged; the consumer gets
// it again, in order, and nothing after it is applied first.
func TestConsumeRetriesFailedEvent(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	stream := f.db.Key("events")
	_, err := f.orchestrator().Place(ctx, "o1", "ann", twoBooks)
	require.NoError(t, err)
	_, err = NewRelay(f.log, f.db.Client, stream).Flush(ctx)
	require.NoError(t, err)

	var mu sync.Mutex
	var seen []int
	failOnce := true
	consumeUntil(t, f, stream, "g", func(_ context.Context, e Event) error {
		mu.Lock()
		defer mu.Unlock()
		if e.Seq == 3 && failOnce {
			failOnce = false
			return errors.New("store down")
		}
		seen = append(seen, e.Seq)
		return nil
	}, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 5 })
	assert.Equal(t, []int{1, 2, 3, 4, 5}, seen)
	pending, err := f.db.Client.XPending(ctx, stream, "g").Result()
	require.NoError(t, err)
	assert.Zero(t, pending.Count, "all acknowledged")
}

// The read model pages a user's orders newest first with a cursor, and
// keeps users apart.
func TestOrderListPages(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	list := NewOrderList(f.db.Client, f.db.Key("list:"))
	at := time.Unix(1_700_000_000, 0).UTC()
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		require.NoError(t, list.Apply(ctx, Event{Order: id, Seq: 1, Type: Placed, User: "ann", At: at.Add(time.Duration(i) * time.Second),
			Lines: []Line{{Product: "p", Qty: 1, Price: int64(i)}}}))
	}
	require.NoError(t, list.Apply(ctx, Event{Order: "x", Seq: 1, Type: Placed, User: "bob", At: at}))
	var ids []string
	cursor := ""
	for range 3 {
		page, next, err := list.List(ctx, "ann", cursor, 2)
		require.NoError(t, err)
		for _, s := range page {
			ids = append(ids, s.ID)
			assert.Equal(t, StatusPlaced, s.Status)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	assert.Equal(t, []string{"e", "d", "c", "b", "a"}, ids)
}

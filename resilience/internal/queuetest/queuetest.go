// Package queuetest holds the contract a [dlq.Worker] keeps on every
// [dlq.Queue] implementation, as test helpers: package dlq runs them on
// its MemoryQueue and package redisdlq on Redis, so one table of
// assertions pins both.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/resilience/dlq"
)

// DeadLettersPoisonMessages checks that a worker on the empty queue q
// retries a flaky message, dead-letters a poison one after MaxAttempts,
// and acknowledges the rest.
func DeadLettersPoisonMessages(t *testing.T, q dlq.Queue) {
	t.Helper()
	ctx := context.Background()
	for _, body := range []string{"ok-1", "poison", "flaky", "ok-2"} {
		_, err := q.Publish(ctx, []byte(body))
		require.NoError(t, err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var dead []dlq.DeadLetter
	w, err := dlq.NewWorker(dlq.WorkerOptions{Queue: q, Handler: func(_ context.Context, m dlq.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[string(m.Body)]++
		switch {
		case string(m.Body) == "poison":
			return fmt.Errorf("cannot parse attempt %d", m.Attempts+1)
		case string(m.Body) == "flaky" && m.Attempts < 1:
			return errors.New("timeout")
		}
		return nil
	}, MaxAttempts: 3, Wait: 10 * time.Millisecond, OnDeadLetter: func(d dlq.DeadLetter) { dead = append(dead, d) }})
	require.NoError(t, err)
	for {
		got, err := w.ProcessOne(ctx)
		require.NoError(t, err)
		if !got {
			break
		}
	}
	assert.Equal(t, map[string]int{"ok-1": 1, "ok-2": 1, "flaky": 2, "poison": 3}, seen)
	assert.Equal(t, dlq.Stats{Processed: 7, Succeeded: 3, Retried: 3, DeadLettered: 1}, w.Stats())
	require.Len(t, dead, 1)
	assert.Equal(t, "cannot parse attempt 3", dead[0].Reason)
	assert.Equal(t, 3, dead[0].Attempts)

	stored, err := q.DeadLetters(ctx, 10)
	require.NoError(t, err)
	require.Len(t, stored, 1)
	assert.Equal(t, "poison", string(stored[0].Body))
	assert.Equal(t, "cannot parse attempt 3", stored[0].Reason)
	assert.Equal(t, 3, stored[0].Attempts)
	assert.False(t, stored[0].At.IsZero())
	none, err := q.DeadLetters(ctx, 0)
	require.NoError(t, err)
	assert.Empty(t, none)
}

// RestartLosesNothing checks that a worker stopped in the middle of a
// message loses nothing: a new worker on a new handle on the same queue
// gets the message again, and every message is processed exactly once.
// Each call of newHandle returns a handle on the same, at first empty,
// queue: a restarted process's view.
func RestartLosesNothing(t *testing.T, newHandle func() dlq.Queue) {
	t.Helper()
	ctx := context.Background()
	q := newHandle()
	const n = 20
	for i := range n {
		_, err := q.Publish(ctx, fmt.Appendf(nil, "m%02d", i))
		require.NoError(t, err)
	}
	var mu sync.Mutex
	done := map[string]int{}
	handled := 0
	runCtx, stop := context.WithCancel(ctx)
	handler := func(ctx context.Context, m dlq.Message) error {
		mu.Lock()
		handled++
		crash := handled == 7
		mu.Unlock()
		if crash { // the process is stopped in the middle of this message
			stop()
			<-ctx.Done()
			return ctx.Err()
		}
		mu.Lock()
		done[string(m.Body)]++
		mu.Unlock()
		return nil
	}
	w1, err := dlq.NewWorker(dlq.WorkerOptions{Queue: q, Handler: handler, MaxAttempts: 5, Wait: 10 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, w1.Run(runCtx))
	mu.Lock()
	assert.Len(t, done, 6)
	mu.Unlock()

	w2, err := dlq.NewWorker(dlq.WorkerOptions{Queue: newHandle(), Handler: handler, MaxAttempts: 5, Wait: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx2, cancel2 := context.WithCancel(ctx)
	errc := make(chan error)
	go func() { errc <- w2.Run(ctx2) }()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(done) == n }, 10*time.Second, 5*time.Millisecond)
	cancel2()
	require.NoError(t, <-errc)
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		assert.Equal(t, 1, done[fmt.Sprintf("m%02d", i)], "m%02d processed exactly once", i)
	}
}

// CloseFinishesTheMessageInHand checks that Close stops a running worker
// gracefully on the empty queue q: the message being handled is finished
// and acknowledged, no new one is received, a Close whose context ends
// first says what was left, and a second Close waits for the same
// shutdown.
func CloseFinishesTheMessageInHand(t *testing.T, q dlq.Queue) {
	t.Helper()
	ctx := context.Background()
	for _, body := range []string{"first", "second"} {
		_, err := q.Publish(ctx, []byte(body))
		require.NoError(t, err)
	}
	started, release := make(chan string, 2), make(chan struct{})
	w, err := dlq.NewWorker(dlq.WorkerOptions{Queue: q, MaxAttempts: 3, Wait: time.Minute, Handler: func(ctx context.Context, m dlq.Message) error {
		started <- string(m.Body)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	require.NoError(t, err)
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	assert.Equal(t, "first", <-started)

	expired, cancel := context.WithCancel(ctx)
	cancel()
	err = w.Close(expired)
	require.ErrorIs(t, err, context.Canceled)
	assert.ErrorContains(t, err, "1 Run or ProcessOne calls still handling a message")
	close(release)
	require.NoError(t, w.Close(ctx))
	require.NoError(t, <-ran)
	require.NoError(t, w.Close(ctx), "a second Close waits for the same, finished, shutdown")
	assert.Equal(t, dlq.Stats{Processed: 1, Succeeded: 1}, w.Stats())
	assert.ErrorIs(t, w.Run(ctx), dlq.ErrClosed)
	_, err = w.ProcessOne(ctx)
	assert.ErrorIs(t, err, dlq.ErrClosed)

	// The first message was acknowledged, the second never received: a new
	// worker gets exactly the second.
	var got []string
	w2, err := dlq.NewWorker(dlq.WorkerOptions{Queue: q, MaxAttempts: 3, Wait: 10 * time.Millisecond, Handler: func(_ context.Context, m dlq.Message) error {
		got = append(got, string(m.Body))
		return nil
	}})
	require.NoError(t, err)
	require.NoError(t, q.Recover(ctx))
	for {
		ok, err := w2.ProcessOne(ctx)
		require.NoError(t, err)
		if !ok {
			break
		}
	}
	assert.Equal(t, []string{"second"}, got)
}

// CloseStopsAnIdleWorker checks that Close ends a Run waiting for a
// message at once, without waiting for the receive's timeout. q starts
// empty.
func CloseStopsAnIdleWorker(t *testing.T, q dlq.Queue) {
	t.Helper()
	ctx := context.Background()
	_, err := q.Publish(ctx, []byte("only"))
	require.NoError(t, err)
	handled := make(chan struct{})
	w, err := dlq.NewWorker(dlq.WorkerOptions{Queue: q, MaxAttempts: 1, Wait: time.Hour, Handler: func(context.Context, dlq.Message) error {
		close(handled)
		return nil
	}})
	require.NoError(t, err)
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	<-handled // Run is going back to wait an hour for the next message
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, w.Close(closeCtx))
	require.NoError(t, <-ran)
}

// RecoverKeepsOrder checks that messages received and never acknowledged
// come back after Recover in the order they were published, each under
// its own ID.
func RecoverKeepsOrder(t *testing.T, q dlq.Queue) {
	t.Helper()
	ctx := context.Background()
	// Twelve, so that a queue numbering its messages reaches two digits,
	// and the chance that an unordered recovery looks ordered is nil.
	var ids, want []string
	distinct := map[string]bool{}
	for i := range 12 {
		b := fmt.Sprint("message ", i)
		id, err := q.Publish(ctx, []byte(b))
		require.NoError(t, err)
		ids, want, distinct[id] = append(ids, id), append(want, b), true
	}
	assert.Len(t, distinct, len(ids), "IDs are distinct: %v", ids)
	receive := func() (bodies, got []string) {
		for range ids {
			m, ok, err := q.Receive(ctx, 10*time.Millisecond)
			require.NoError(t, err)
			require.True(t, ok)
			bodies, got = append(bodies, string(m.Body)), append(got, m.ID)
		}
		return bodies, got
	}
	bodies, got := receive() // and never acknowledged: the consumer "crashes"
	assert.Equal(t, want, bodies)
	assert.Equal(t, ids, got)
	require.NoError(t, q.Recover(ctx))
	bodies, got = receive()
	assert.Equal(t, want, bodies, "redelivered in publication order")
	assert.Equal(t, ids, got)
}

// ReceiveWaits checks that a Receive without a wait on an empty queue
// returns at once with nothing, and that one with a wait gets a message
// published while it waits (here after a quarter second, longer than a
// single blocking read of a Redis queue).
func ReceiveWaits(t *testing.T, q dlq.Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, ok, err := q.Receive(ctx, 0)
	require.NoError(t, err)
	assert.False(t, ok, "an empty queue")
	published := make(chan error, 1)
	go func() {
		time.Sleep(250 * time.Millisecond)
		_, err := q.Publish(ctx, []byte("late"))
		published <- err
	}()
	m, ok, err := q.Receive(ctx, 5*time.Second)
	require.NoError(t, err)
	require.True(t, ok, "the message published during the wait")
	assert.Equal(t, "late", string(m.Body))
	require.NoError(t, <-published)
	require.NoError(t, q.Ack(ctx, m))
}

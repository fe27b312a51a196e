// Package queuetest holds the contract a [resilience.DLQWorker] keeps on
// every [resilience.MessageQueue] implementation, as test helpers: package
// resilience runs them on its MemoryQueue and package redisqueue on Redis,
// so one table of assertions pins both.
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

	"github.com/sysdesign-go/sysdesign/resilience"
)

// DeadLettersPoisonMessages checks that a worker on the empty queue q
// retries a flaky message, dead-letters a poison one after MaxAttempts,
// and acknowledges the rest.
func DeadLettersPoisonMessages(t *testing.T, q resilience.MessageQueue) {
	t.Helper()
	ctx := context.Background()
	for _, body := range []string{"ok-1", "poison", "flaky", "ok-2"} {
		_, err := q.Publish(ctx, []byte(body))
		require.NoError(t, err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var dead []resilience.DeadLetter
	w, err := resilience.NewDLQWorker(q, func(_ context.Context, m resilience.Message) error {
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
	}, resilience.DLQWorkerOptions{MaxAttempts: 3, Wait: 10 * time.Millisecond, OnDeadLetter: func(d resilience.DeadLetter) { dead = append(dead, d) }})
	require.NoError(t, err)
	for {
		got, err := w.ProcessOne(ctx)
		require.NoError(t, err)
		if !got {
			break
		}
	}
	assert.Equal(t, map[string]int{"ok-1": 1, "ok-2": 1, "flaky": 2, "poison": 3}, seen)
	assert.Equal(t, resilience.DLQStats{Processed: 7, Succeeded: 3, Retried: 3, DeadLettered: 1}, w.Stats())
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
func RestartLosesNothing(t *testing.T, newHandle func() resilience.MessageQueue) {
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
	handler := func(ctx context.Context, m resilience.Message) error {
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
	w1, err := resilience.NewDLQWorker(q, handler, resilience.DLQWorkerOptions{MaxAttempts: 5, Wait: 10 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, w1.Run(runCtx))
	mu.Lock()
	assert.Len(t, done, 6)
	mu.Unlock()

	w2, err := resilience.NewDLQWorker(newHandle(), handler, resilience.DLQWorkerOptions{MaxAttempts: 5, Wait: 10 * time.Millisecond})
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

package resilience

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queueMakers returns constructors of every MessageQueue implementation.
// Calling one twice gives two handles on the same queue: a restarted
// worker's view.
func queueMakers(t *testing.T) map[string]func() MessageQueue {
	mem := NewMemoryQueue()
	return map[string]func() MessageQueue{"memory": func() MessageQueue { return mem }}
}

func TestDLQWorkerDeadLettersPoisonMessages(t *testing.T) {
	for name, newQ := range queueMakers(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			q := newQ()
			for _, body := range []string{"ok-1", "poison", "flaky", "ok-2"} {
				_, err := q.Publish(ctx, []byte(body))
				require.NoError(t, err)
			}
			var mu sync.Mutex
			seen := map[string]int{}
			var dead []DeadLetter
			w, err := NewDLQWorker(q, func(_ context.Context, m Message) error {
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
			}, DLQWorkerOptions{MaxAttempts: 3, Wait: 10 * time.Millisecond, OnDeadLetter: func(d DeadLetter) { dead = append(dead, d) }})
			require.NoError(t, err)
			for {
				got, err := w.ProcessOne(ctx)
				require.NoError(t, err)
				if !got {
					break
				}
			}
			assert.Equal(t, map[string]int{"ok-1": 1, "ok-2": 1, "flaky": 2, "poison": 3}, seen)
			assert.Equal(t, DLQStats{Processed: 7, Succeeded: 3, Retried: 3, DeadLettered: 1}, w.Stats())
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
		})
	}
}

// A worker stopped in the middle of a message loses nothing: a new worker
// on the same queue (same consumer) gets the message again.
func TestDLQWorkerRestartLosesNothing(t *testing.T) {
	for name, newQ := range queueMakers(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			q := newQ()
			const n = 20
			for i := range n {
				_, err := q.Publish(ctx, fmt.Appendf(nil, "m%02d", i))
				require.NoError(t, err)
			}
			var mu sync.Mutex
			done := map[string]int{}
			handled := 0
			runCtx, stop := context.WithCancel(ctx)
			handler := func(ctx context.Context, m Message) error {
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
			w1 := must(NewDLQWorker(q, handler, DLQWorkerOptions{MaxAttempts: 5, Wait: 10 * time.Millisecond}))
			require.NoError(t, w1.Run(runCtx))
			mu.Lock()
			assert.Len(t, done, 6)
			mu.Unlock()

			w2 := must(NewDLQWorker(newQ(), handler, DLQWorkerOptions{MaxAttempts: 5, Wait: 10 * time.Millisecond}))
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
		})
	}
}

func TestDLQBadInput(t *testing.T) {
	q := NewMemoryQueue()
	_, err := NewDLQWorker(nil, func(context.Context, Message) error { return nil }, DLQWorkerOptions{MaxAttempts: 3})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewDLQWorker(q, nil, DLQWorkerOptions{MaxAttempts: 3})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "nil handler")
	for _, n := range []int{0, -2} { // no default number of deliveries
		w, err := NewDLQWorker(q, func(context.Context, Message) error { return nil }, DLQWorkerOptions{MaxAttempts: n})
		assert.Nil(t, w)
		assert.ErrorIs(t, err, ErrInvalidConfig)
		assert.True(t, strings.Contains(err.Error(), fmt.Sprintf("got %d", n)), err)
	}
}

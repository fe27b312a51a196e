package hook

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Push only queues; Flush delivers every queued event once, in order.
func TestQueueDeliversInOrderOnFlush(t *testing.T) {
	var got []int
	q := Queue[int]{Hook: func(e int) { got = append(got, e) }}
	q.Flush()
	assert.Empty(t, got, "nothing queued, nothing delivered")
	q.Push(1)
	q.Push(2)
	q.Push(3)
	assert.Empty(t, got, "Push does not deliver")
	q.Flush()
	assert.Equal(t, []int{1, 2, 3}, got)
	q.Flush()
	assert.Equal(t, []int{1, 2, 3}, got, "a second Flush delivers nothing again")
	q.Push(4)
	q.Flush()
	assert.Equal(t, []int{1, 2, 3, 4}, got)
}

// The zero Queue and one with a nil Hook accept events and drop them.
func TestQueueWithoutHookDeliversNothing(t *testing.T) {
	var q Queue[int]
	require.NotPanics(t, func() {
		q.Push(1)
		q.Flush()
	})
	q.Hook = func(int) { t.Error("an event pushed before the hook was set is delivered") }
	q.Flush()
}

// Events a hook pushes while it runs are delivered by the same Flush,
// after the ones before them; a Flush from inside the hook returns at
// once instead of calling the hook within itself.
func TestQueueHookThatPushes(t *testing.T) {
	var got []int
	depth := 0
	var q Queue[int]
	q.Hook = func(e int) {
		depth++
		defer func() { depth-- }()
		require.Equal(t, 1, depth, "the hook is not called within itself")
		got = append(got, e)
		if e < 3 {
			q.Push(e + 10)
			q.Flush()
		}
	}
	q.Push(1)
	q.Push(2)
	q.Push(3)
	q.Flush()
	assert.Equal(t, []int{1, 2, 3, 11, 12}, got)
}

// Under concurrent producers every event is delivered exactly once, each
// producer's events in its order, and the hook never runs concurrently
// with itself.
func TestQueueConcurrentProducers(t *testing.T) {
	const producers, each = 8, 500
	var running atomic.Int32
	seen := make([][]int, producers)
	q := Queue[[2]int]{Hook: func(e [2]int) {
		if running.Add(1) != 1 {
			t.Error("the hook runs concurrently with itself")
		}
		seen[e[0]] = append(seen[e[0]], e[1])
		running.Add(-1)
	}}
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				q.Push([2]int{p, i})
				q.Flush()
			}
		})
	}
	wg.Wait()
	q.Flush()
	for p := range producers {
		require.Len(t, seen[p], each, "producer %d", p)
		for i, v := range seen[p] {
			require.Equal(t, i, v, "producer %d's events in order", p)
		}
	}
}

package resilience

import (
	"sync"
	"sync/atomic"
)

// eventQueue delivers events to a user hook in the order they were queued,
// never under the lock of the component that produced them: producers call
// push (which may run under their own lock), and call flush after they have
// released it. One goroutine delivers at a time, so the hook sees events in
// order and is never called concurrently with itself.
type eventQueue[E any] struct {
	hook func(E)
	n    atomic.Int64 // events pushed and not yet taken for delivery

	mu         sync.Mutex
	pending    []E  // guarded by mu
	delivering bool // guarded by mu
}

func (q *eventQueue[E]) push(e E) {
	if q.hook == nil {
		return
	}
	q.mu.Lock()
	q.pending = append(q.pending, e)
	q.n.Add(1)
	q.mu.Unlock()
}

// flush delivers queued events; it must be called with no lock held.
func (q *eventQueue[E]) flush() {
	if q.hook == nil || q.n.Load() == 0 {
		return
	}
	q.mu.Lock()
	if q.delivering || len(q.pending) == 0 {
		q.mu.Unlock()
		return
	}
	q.delivering = true
	for len(q.pending) > 0 {
		batch := q.pending
		q.pending = nil
		q.n.Add(-int64(len(batch)))
		q.mu.Unlock()
		for _, e := range batch {
			q.hook(e)
		}
		q.mu.Lock()
	}
	q.delivering = false
	q.mu.Unlock()
}

// counter is a statistics counter, safe for concurrent use.
type counter struct{ v atomic.Uint64 }

func (c *counter) add()         { c.v.Add(1) }
func (c *counter) load() uint64 { return c.v.Load() }

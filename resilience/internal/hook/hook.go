// Package hook delivers the events of a policy to a user's hook in order,
// never under the policy's lock.
package hook

import (
	"sync"
	"sync/atomic"
)

// Queue delivers events to a user hook in the order they were queued,
// never under the lock of the component that produced them: producers
// call Push (which may run under their own lock), and call Flush after
// they have released it. One goroutine delivers at a time, so the hook
// sees events in order and is never called concurrently with itself.
// The zero Queue, and one whose Hook is nil, deliver nothing.
type Queue[E any] struct {
	Hook   func(E)
	queued atomic.Bool // whether pending may hold events: Flush skips the lock if not

	mu         sync.Mutex
	pending    []E  // guarded by mu
	delivering bool // guarded by mu
}

// Push queues e for delivery.
func (q *Queue[E]) Push(e E) {
	if q.Hook == nil {
		return
	}
	q.mu.Lock()
	q.pending = append(q.pending, e)
	q.queued.Store(true)
	q.mu.Unlock()
}

// Flush delivers queued events; it must be called with no lock held.
func (q *Queue[E]) Flush() {
	if q.Hook == nil || !q.queued.Load() {
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
		q.queued.Store(false)
		q.mu.Unlock()
		for _, e := range batch {
			q.Hook(e)
		}
		q.mu.Lock()
	}
	q.delivering = false
	q.mu.Unlock()
}

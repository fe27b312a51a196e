package dlq

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemoryQueue is an in-memory [Queue]. It is safe for concurrent
// use; the zero value is an empty queue ready to use.
type MemoryQueue struct {
	mu       sync.Mutex
	ready    []Message          // guarded by mu
	inflight map[string]Message // guarded by mu
	dead     []DeadLetter       // guarded by mu
	seq      uint64             // guarded by mu
	notify   chan struct{}      // guarded by mu (made lazily); signalled on Publish/Retry/Recover
}

// NewMemoryQueue returns an empty queue.
func NewMemoryQueue() *MemoryQueue { return &MemoryQueue{} }

// initLocked makes the map and channel of a zero queue. Requires q.mu.
func (q *MemoryQueue) initLocked() {
	if q.notify == nil {
		q.inflight = map[string]Message{}
		q.notify = make(chan struct{}, 1)
	}
}

func (q *MemoryQueue) push(m Message) {
	q.initLocked()
	q.seq++
	m.ID = strconv.FormatUint(q.seq, 10)
	q.ready = append(q.ready, m)
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// Publish implements [Queue].
func (q *MemoryQueue) Publish(_ context.Context, body []byte) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.push(Message{Body: append([]byte(nil), body...)})
	return q.ready[len(q.ready)-1].ID, nil
}

// Receive implements [Queue].
func (q *MemoryQueue) Receive(ctx context.Context, wait time.Duration) (Message, bool, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		q.mu.Lock()
		q.initLocked()
		if len(q.ready) > 0 {
			m := q.ready[0]
			q.ready = q.ready[1:]
			q.inflight[m.ID] = m
			q.mu.Unlock()
			return m, true, nil
		}
		notify := q.notify
		q.mu.Unlock()
		select {
		case <-notify:
		case <-t.C:
			return Message{}, false, nil
		case <-ctx.Done():
			return Message{}, false, ctx.Err()
		}
	}
}

// Ack implements [Queue].
func (q *MemoryQueue) Ack(_ context.Context, m Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inflight, m.ID)
	return nil
}

// Retry implements [Queue].
func (q *MemoryQueue) Retry(_ context.Context, m Message, reason string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inflight, m.ID)
	m.Attempts++
	m.LastError = reason
	q.push(m)
	return nil
}

// Dead implements [Queue].
func (q *MemoryQueue) Dead(_ context.Context, m Message, reason string, at time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inflight, m.ID)
	m.Attempts++
	m.LastError = reason
	q.dead = append(q.dead, DeadLetter{Message: m, Reason: reason, At: at})
	return nil
}

// DeadLetters implements [Queue]; n ≤ 0 returns none.
func (q *MemoryQueue) DeadLetters(_ context.Context, n int) ([]DeadLetter, error) {
	if n <= 0 { // (n < 0 alone would do: n == 0 returns none below too)
		return nil, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]DeadLetter(nil), q.dead[:min(n, len(q.dead))]...), nil
}

// Recover implements [Queue]: every unacknowledged message goes
// back to the front of the queue, oldest first.
func (q *MemoryQueue) Recover(context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.inflight) == 0 {
		return nil
	}
	back := make([]Message, 0, len(q.inflight))
	for _, m := range q.inflight {
		back = append(back, m)
	}
	// IDs are sequence numbers: restore publication order.
	slices.SortFunc(back, func(a, b Message) int { return compareIDs(a.ID, b.ID) })
	clear(q.inflight)
	q.ready = append(back, q.ready...)
	q.initLocked()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return nil
}

// compareIDs orders decimal sequence numbers: the shorter is the smaller.
func compareIDs(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)) }

// Len returns the number of messages ready and in flight.
func (q *MemoryQueue) Len() (ready, inflight int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ready), len(q.inflight)
}

var _ Queue = (*MemoryQueue)(nil)

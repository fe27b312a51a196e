package resilience

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Message is one message of a [MessageQueue].
type Message struct {
	// ID is assigned by the queue; it changes when a message is requeued.
	ID   string
	Body []byte
	// Attempts is the number of failed deliveries so far.
	Attempts int
	// LastError is the reason of the last failure, "" on first delivery.
	LastError string
}

// DeadLetter is a message that kept failing, with the reason.
type DeadLetter struct {
	Message
	Reason string
	At     time.Time
}

// MessageQueue is an at-least-once queue with a dead-letter sink, consumed
// by a [DLQWorker]. Retry and Dead each acknowledge the message and write
// it elsewhere atomically, so a crash between the two steps loses nothing
// and duplicates nothing. [MemoryQueue] and
// [github.com/sysdesign-go/sysdesign/resilience/redisqueue.Queue]
// implement it. Implementations must be safe for concurrent use.
type MessageQueue interface {
	// Publish appends a message and returns its ID.
	Publish(ctx context.Context, body []byte) (string, error)
	// Receive returns the next message, waiting up to wait; ok is false
	// when none came.
	Receive(ctx context.Context, wait time.Duration) (m Message, ok bool, err error)
	// Ack removes a processed message.
	Ack(ctx context.Context, m Message) error
	// Retry acknowledges m and enqueues it again with one more attempt.
	Retry(ctx context.Context, m Message, reason string) error
	// Dead acknowledges m and moves it to the dead-letter sink.
	Dead(ctx context.Context, m Message, reason string, at time.Time) error
	// DeadLetters returns up to n dead letters, oldest first; none for
	// n ≤ 0.
	DeadLetters(ctx context.Context, n int) ([]DeadLetter, error)
	// Recover makes messages delivered to this consumer but never
	// acknowledged (it crashed or was stopped mid-message) deliverable
	// again; a worker calls it when it starts.
	Recover(ctx context.Context) error
}

// DLQWorkerOptions configure a [DLQWorker]. MaxAttempts is required; the
// zero value of every other field is a default.
type DLQWorkerOptions struct {
	// MaxAttempts is the number of deliveries before a message is
	// dead-lettered: 1 dead-letters on the first failure. It is required —
	// 0 or negative is an error, not a default — because each extra
	// delivery runs the handler again.
	MaxAttempts int
	// Wait is how long one Receive blocks. Default 1 s.
	Wait time.Duration
	// OnDeadLetter is called after a message was dead-lettered. Default
	// nil.
	OnDeadLetter func(DeadLetter)
	// Now stamps dead letters. Default time.Now.
	Now func() time.Time
}

// DLQWorker processes a [MessageQueue] with a handler, requeueing failed
// messages and moving those that failed MaxAttempts times to the
// dead-letter sink with the last error as the reason (the guide, "Dead
// Letter Queues: Handle failed messages"). A poison message then costs N
// attempts instead of blocking the queue or being lost.
//
// Delivery is at least once: a message whose handler was interrupted is
// delivered again after [MessageQueue.Recover], so handlers must be
// idempotent. Requeued messages go to the back of the queue (the queue's
// length is their backoff); wrap the handler in a [Retry] for in-place
// retries with backoff.
//
// A DLQWorker is safe for concurrent use; run one Run loop per consumer.
type DLQWorker struct {
	q       MessageQueue
	handler func(context.Context, Message) error
	o       DLQWorkerOptions

	processed, succeeded, retried, dead counter
}

// DLQStats counts messages handled, succeeded, requeued and dead-lettered.
type DLQStats struct{ Processed, Succeeded, Retried, DeadLettered uint64 }

// NewDLQWorker returns a worker running handler over q.
func NewDLQWorker(q MessageQueue, handler func(context.Context, Message) error, opts DLQWorkerOptions) (*DLQWorker, error) {
	setDefault(&opts.Wait, time.Second)
	switch {
	case q == nil:
		return nil, configError("dlq worker needs a queue")
	case handler == nil:
		return nil, configError("dlq worker: nil handler")
	case opts.MaxAttempts < 1:
		return nil, configError("dlq worker MaxAttempts must be set to at least 1, got %d", opts.MaxAttempts)
	case opts.Wait < 0:
		return nil, configError("dlq worker Wait must be positive, got %v", opts.Wait)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &DLQWorker{q: q, handler: handler, o: opts}, nil
}

// Run recovers unacknowledged messages, then processes messages until ctx
// ends (returning nil) or the queue fails.
func (w *DLQWorker) Run(ctx context.Context) error {
	if w == nil || w.q == nil {
		return notMade("dlq worker", "NewDLQWorker")
	}
	if err := w.q.Recover(ctx); err != nil {
		return err
	}
	for {
		if _, err := w.ProcessOne(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// ProcessOne receives at most one message and handles it; it reports
// whether there was one.
func (w *DLQWorker) ProcessOne(ctx context.Context) (bool, error) {
	if w == nil || w.q == nil {
		return false, notMade("dlq worker", "NewDLQWorker")
	}
	m, ok, err := w.q.Receive(ctx, w.o.Wait)
	if err != nil || !ok {
		return false, err
	}
	herr := w.handler(ctx, m)
	if ctx.Err() != nil {
		// Interrupted: leave it unacknowledged, to be recovered.
		return true, ctx.Err()
	}
	w.processed.add()
	switch {
	case herr == nil:
		w.succeeded.add()
		return true, w.q.Ack(ctx, m)
	case m.Attempts+1 >= w.o.MaxAttempts:
		dl := DeadLetter{Message: m, Reason: herr.Error(), At: w.o.Now()}
		dl.Attempts++
		if err := w.q.Dead(ctx, m, dl.Reason, dl.At); err != nil {
			return true, err
		}
		w.dead.add()
		if w.o.OnDeadLetter != nil {
			w.o.OnDeadLetter(dl)
		}
		return true, nil
	default:
		w.retried.add()
		return true, w.q.Retry(ctx, m, herr.Error())
	}
}

// Stats returns the worker's counters.
func (w *DLQWorker) Stats() DLQStats {
	return DLQStats{Processed: w.processed.load(), Succeeded: w.succeeded.load(), Retried: w.retried.load(), DeadLettered: w.dead.load()}
}

// MemoryQueue is an in-memory [MessageQueue]. It is safe for concurrent
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

// Publish implements [MessageQueue].
func (q *MemoryQueue) Publish(_ context.Context, body []byte) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.push(Message{Body: append([]byte(nil), body...)})
	return q.ready[len(q.ready)-1].ID, nil
}

// Receive implements [MessageQueue].
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

// Ack implements [MessageQueue].
func (q *MemoryQueue) Ack(_ context.Context, m Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inflight, m.ID)
	return nil
}

// Retry implements [MessageQueue].
func (q *MemoryQueue) Retry(_ context.Context, m Message, reason string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inflight, m.ID)
	m.Attempts++
	m.LastError = reason
	q.push(m)
	return nil
}

// Dead implements [MessageQueue].
func (q *MemoryQueue) Dead(_ context.Context, m Message, reason string, at time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inflight, m.ID)
	m.Attempts++
	m.LastError = reason
	q.dead = append(q.dead, DeadLetter{Message: m, Reason: reason, At: at})
	return nil
}

// DeadLetters implements [MessageQueue]; n ≤ 0 returns none.
func (q *MemoryQueue) DeadLetters(_ context.Context, n int) ([]DeadLetter, error) {
	if n <= 0 {
		return nil, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]DeadLetter(nil), q.dead[:min(n, len(q.dead))]...), nil
}

// Recover implements [MessageQueue]: every unacknowledged message goes
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
	for i := 1; i < len(back); i++ {
		for j := i; j > 0 && idLess(back[j].ID, back[j-1].ID); j-- {
			back[j], back[j-1] = back[j-1], back[j]
		}
	}
	clear(q.inflight)
	q.ready = append(back, q.ready...)
	q.initLocked()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return nil
}

func idLess(a, b string) bool { return len(a) < len(b) || (len(a) == len(b) && a < b) }

// Len returns the number of messages ready and in flight.
func (q *MemoryQueue) Len() (ready, inflight int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ready), len(q.inflight)
}

var _ MessageQueue = (*MemoryQueue)(nil)

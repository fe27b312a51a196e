package dlq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/resilience"
)

// ErrClosed is returned by [Worker.Run] and [Worker.ProcessOne] called
// after [Worker.Close].
var ErrClosed = errors.New("dlq: worker closed")

// Message is one message of a [Queue].
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

// Queue is an at-least-once queue with a dead-letter sink, consumed by a
// [Worker]. Retry and Dead each acknowledge the message and write it
// elsewhere atomically, so a crash between the two steps loses nothing
// and duplicates nothing. [MemoryQueue] and
// [github.com/sysdesign-go/sysdesign/resilience/dlq/redisdlq.Queue]
// implement it. Implementations must be safe for concurrent use.
type Queue interface {
	// Publish appends a message and returns its ID.
	Publish(ctx context.Context, body []byte) (string, error)
	// Receive returns the next message, waiting up to wait; ok is false
	// when none came. It ends early when ctx ends (a Worker's Close
	// cancels it), at once or within a bounded delay.
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

// WorkerOptions configure a [Worker]. Queue, Handler and MaxAttempts are
// required; the zero value of every other field is a default.
type WorkerOptions struct {
	// Queue is where messages come from and dead letters go. Required.
	Queue Queue
	// Handler processes one message; an error requeues it or, after
	// MaxAttempts deliveries, dead-letters it. Required.
	Handler func(ctx context.Context, m Message) error
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

// Worker processes a [Queue] with a handler, requeueing failed messages
// and moving those that failed MaxAttempts times to the dead-letter sink
// with the last error as the reason (the guide, "Dead Letter Queues:
// Handle failed messages"). A poison message then costs N attempts
// instead of blocking the queue or being lost.
//
// Delivery is at least once: a message whose handler was interrupted (its
// context ended) is delivered again after [Queue.Recover], so handlers
// must be idempotent. Requeued messages go to the back of the queue (the
// queue's length is their backoff); wrap the handler in a resilience.Retry
// for in-place retries with backoff.
//
// [Worker.Close] stops it gracefully: the messages being handled are
// finished and acknowledged, and no new one is received. Cancelling Run's
// context instead stops at once, leaving the message being handled to be
// recovered.
//
// A Worker is safe for concurrent use; run one Run loop per consumer.
type Worker struct {
	q            Queue
	handler      func(context.Context, Message) error
	maxAttempts  int
	wait         time.Duration
	onDeadLetter func(DeadLetter)
	now          func() time.Time

	// stopping ends when Close is called: it cancels waits for a message,
	// never a handler.
	stopping context.Context
	stop     context.CancelFunc

	mu      sync.Mutex
	closed  bool          // guarded by mu
	running int           // guarded by mu: Run and ProcessOne calls in progress
	idle    chan struct{} // closed once closed is set and running is 0

	processed, succeeded, retried, dead atomic.Uint64
}

// Stats counts messages handled, succeeded, requeued and dead-lettered.
type Stats struct{ Processed, Succeeded, Retried, DeadLettered uint64 }

// NewWorker returns a worker configured by opts.
func NewWorker(opts WorkerOptions) (*Worker, error) {
	if opts.Wait == 0 {
		opts.Wait = time.Second
	}
	switch {
	case opts.Queue == nil:
		return nil, configError("worker needs a Queue")
	case opts.Handler == nil:
		return nil, configError("worker: nil Handler")
	case opts.MaxAttempts < 1:
		return nil, configError("worker MaxAttempts must be set to at least 1, got %d", opts.MaxAttempts)
	case opts.Wait < 0:
		return nil, configError("worker Wait must be positive, got %v", opts.Wait)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Worker{
		q: opts.Queue, handler: opts.Handler, maxAttempts: opts.MaxAttempts, wait: opts.Wait,
		onDeadLetter: opts.OnDeadLetter, now: opts.Now, idle: make(chan struct{}),
	}
	w.stopping, w.stop = context.WithCancel(context.Background())
	return w, nil
}

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: dlq "+format, append([]any{resilience.ErrInvalidConfig}, args...)...)
}

func notMade() error { return configError("worker not made by NewWorker") }

// enter counts a Run or ProcessOne in, unless the worker is closed.
func (w *Worker) enter() error {
	if w == nil || w.q == nil {
		return notMade()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.running++
	return nil
}

func (w *Worker) leave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running--
	if w.closed && w.running == 0 {
		close(w.idle)
	}
}

// Run recovers unacknowledged messages, then processes messages until
// [Worker.Close] is called or ctx ends (returning nil), or the queue
// fails. After Close it returns [ErrClosed] at once.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.enter(); err != nil {
		return err
	}
	defer w.leave()
	if err := w.q.Recover(ctx); err != nil {
		return err
	}
	for w.stopping.Err() == nil {
		if _, err := w.processOne(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// ProcessOne receives at most one message and handles it; it reports
// whether there was one. After [Worker.Close] it returns [ErrClosed].
func (w *Worker) ProcessOne(ctx context.Context) (bool, error) {
	if err := w.enter(); err != nil {
		return false, err
	}
	defer w.leave()
	return w.processOne(ctx)
}

func (w *Worker) processOne(ctx context.Context) (bool, error) {
	// The wait for a message ends with ctx or with Close; the handler's
	// context ends only with ctx, so Close lets it finish.
	rctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(w.stopping, cancel)
	m, ok, err := w.q.Receive(rctx, w.wait)
	unhook()
	cancel()
	if !ok {
		if w.stopping.Err() != nil && ctx.Err() == nil {
			err = nil // Close ended the wait: nothing was received
		}
		return false, err
	}
	if err != nil {
		return false, err
	}
	herr := w.handler(ctx, m)
	if ctx.Err() != nil {
		// Interrupted: leave it unacknowledged, to be recovered.
		return true, ctx.Err()
	}
	w.processed.Add(1)
	switch {
	case herr == nil:
		w.succeeded.Add(1)
		return true, w.q.Ack(ctx, m)
	case m.Attempts+1 >= w.maxAttempts:
		dl := DeadLetter{Message: m, Reason: herr.Error(), At: w.now()}
		dl.Attempts++
		if err := w.q.Dead(ctx, m, dl.Reason, dl.At); err != nil {
			return true, err
		}
		w.dead.Add(1)
		if w.onDeadLetter != nil {
			w.onDeadLetter(dl)
		}
		return true, nil
	default:
		w.retried.Add(1)
		return true, w.q.Retry(ctx, m, herr.Error())
	}
}

// Close stops the worker: Run and ProcessOne stop waiting for messages,
// finish and acknowledge the ones they are handling, and return; later
// calls return [ErrClosed]. Close waits for them until they have returned
// or ctx is done; then it returns an error wrapping ctx.Err() that says
// how many were still handling a message. Calling it again waits, under
// the new ctx, for the same shutdown.
func (w *Worker) Close(ctx context.Context) error {
	if w == nil || w.q == nil {
		return notMade()
	}
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		w.stop()
		if w.running == 0 {
			close(w.idle)
		}
	}
	w.mu.Unlock()
	select {
	case <-w.idle:
		return nil
	case <-ctx.Done():
		w.mu.Lock()
		n := w.running
		w.mu.Unlock()
		return fmt.Errorf("dlq: worker closing with %d Run or ProcessOne calls still handling a message: %w", n, ctx.Err())
	}
}

// Stats returns the worker's counters.
func (w *Worker) Stats() Stats {
	return Stats{Processed: w.processed.Load(), Succeeded: w.succeeded.Load(), Retried: w.retried.Load(), DeadLettered: w.dead.Load()}
}

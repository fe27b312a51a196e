package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Write-behind — writes go to the cache now and to the database later, in
// batches.
//
// The guide: "Write-Behind: Batch updates to database. Flow: Write to cache
// → batch to DB later. Pros: Fast writes, reduced DB load. Cons: Potential
// data loss, complexity. Use Cases: High-write applications, analytics."
//
// [WriteBehind] acknowledges a write once the cache has it and the write is
// queued. A background flusher sends queued writes to the [BatchWriter] in
// batches of [WriteBehindOptions.BatchSize] or every
// [WriteBehindOptions.Interval], whichever comes first. Repeated writes to
// a queued key coalesce into one (the source sees only the last value),
// which is where the "reduced DB load" comes from. A failed batch is
// retried with exponential backoff, forever, in order; nothing is dropped.
// The queue is bounded: when full, Set blocks or fails with [ErrQueueFull],
// as [WriteBehindOptions.Full] says. [WriteBehind.Flush] and
// [WriteBehind.Close] drain the queue. Close is bounded by its context:
// when it ends, the batch being written has its context cancelled, no
// further batch starts, and Close returns an [*UnflushedError] naming
// exactly the keys the source has not acknowledged (also returned by
// [WriteBehind.Unflushed]) so the caller can keep them — an acknowledged
// write is never silently lost while the process lives. What the pattern
// cannot avoid is the guide's "potential data loss": a crash loses the
// queue (see [WriteBehindStats.Queued] and the lab's write-behind
// experiment for how much is at risk).

// FullPolicy says what [WriteBehind.Set] does when the queue is full.
type FullPolicy uint8

// Full-queue policies.
const (
	// FullBlock makes Set wait for room or for its context to end.
	FullBlock FullPolicy = iota
	// FullError makes Set fail at once with [ErrQueueFull].
	FullError
)

// WriteBehindOptions configures [WriteBehind]. The zero value flushes
// batches of 100 writes at least every second, queues at most 10,000 keys,
// blocks writers when the queue is full and retries failed batches with
// backoff from 10 ms to 10 s.
type WriteBehindOptions struct {
	// BatchSize is the most writes sent to the source in one batch; a full
	// batch is flushed at once. Default 0: 100.
	BatchSize int
	// Interval is the longest a write waits in the queue when no batch
	// fills. Default 0: one second.
	Interval time.Duration
	// QueueSize bounds the number of distinct keys waiting to be written
	// (including the batch being written). Default 0: 10,000.
	QueueSize int
	// Full is what Set does when the queue is full. Default [FullBlock].
	Full FullPolicy
	// TTL is the cache lifetime of written values. Default 0: the store's
	// default.
	TTL time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries of a failed
	// batch; it doubles from MinBackoff up to MaxBackoff. Defaults 10 ms
	// and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// WriteTimeout bounds each call of the BatchWriter. Default 0: 10 s.
	WriteTimeout time.Duration
	// OnFlush is called after every batch attempt with its size and error
	// (nil on success), outside any lock. Default nil.
	OnFlush func(size int, err error)
}

// WriteBehind is a write-behind cache writer. It is safe for concurrent
// use. Create it with [NewWriteBehind] and stop it with [WriteBehind.Close];
// its flusher goroutine ends there. A zero WriteBehind is not usable: its
// methods return an error wrapping [ErrInvalidConfig] at once.
type WriteBehind[K comparable, V any] struct {
	store Store[K, V]
	dst   BatchWriter[K, V]
	opts  WriteBehindOptions

	mu       sync.Mutex
	pending  map[K]*Write[K, V] // guarded by mu: queued, not yet taken
	order    []K                // guarded by mu: pending keys, oldest first
	inflight []Write[K, V]      // guarded by mu: the batch being written
	changed  chan struct{}      // guarded by mu: closed on every change
	closed   bool               // guarded by mu
	stopped  bool               // guarded by mu: the flusher has ended
	lastErr  error              // guarded by mu

	kick   chan struct{}
	stop   chan struct{}      // closed by Close: no batch starts after it
	cancel context.CancelFunc // cancels the batch being written
	done   chan struct{}      // closed when the flusher ends
	stats  struct{ accepted, coalesced, written, batches, failures atomic.Uint64 }

	closeMu  sync.Mutex    // guards closing and closeErr
	closing  chan struct{} // closed when the first Close has finished
	closeErr error         // what the first Close returned
}

// UnflushedError is returned by [WriteBehind.Close] when writes it
// acknowledged are not in the source: its context ended first, or the
// source kept failing. Keys are exactly the keys whose latest write the
// source has not acknowledged, oldest first ([WriteBehind.Unflushed] gives
// the writes themselves). A batch the source failed may still have been
// partly applied: delivery is at least once. It wraps [ErrUnflushed] and
// the cause (the context's error, the source's last error, or
// [ErrClosed]); get it with errors.As:
//
//	var ue *cache.UnflushedError[string]
//	if errors.As(err, &ue) { keep(ue.Keys) }
type UnflushedError[K comparable] struct {
	Keys  []K   // the keys not in the source, oldest first
	Cause error // why they are not
}

// Error names the count, the first few keys and the cause.
func (e *UnflushedError[K]) Error() string {
	const show = 10
	keys := fmt.Sprint(e.Keys)
	if len(e.Keys) > show {
		keys = strings.TrimSuffix(fmt.Sprint(e.Keys[:show]), "]") + " ...]"
	}
	msg := fmt.Sprintf("cache: write-behind: %d writes not in the source, keys %s", len(e.Keys), keys)
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unwrap returns [ErrUnflushed] and the cause, if any.
func (e *UnflushedError[K]) Unwrap() []error {
	if e.Cause == nil {
		return []error{ErrUnflushed}
	}
	return []error{ErrUnflushed, e.Cause}
}

// WriteBehindStats is a snapshot of a [WriteBehind]'s counters.
type WriteBehindStats struct {
	// Queued is the number of acknowledged writes not yet in the source:
	// what a crash would lose now.
	Queued    int
	Accepted  uint64 // Set and Delete calls acknowledged
	Coalesced uint64 // writes merged into a write already queued
	Written   uint64 // writes the source accepted
	Batches   uint64 // successful batches
	Failures  uint64 // failed batch attempts (each was retried)
}

// NewWriteBehind returns a write-behind writer caching into store and
// flushing to dst, and starts its flusher.
func NewWriteBehind[K comparable, V any](store Store[K, V], dst BatchWriter[K, V], opts WriteBehindOptions) (*WriteBehind[K, V], error) {
	switch {
	case store == nil:
		return nil, invalid("nil store")
	case dst == nil:
		return nil, invalid("nil batch writer")
	case opts.BatchSize < 0, opts.QueueSize < 0:
		return nil, invalid("negative batch size %d or queue size %d", opts.BatchSize, opts.QueueSize)
	case opts.Interval < 0, opts.TTL < 0, opts.MinBackoff < 0, opts.MaxBackoff < 0, opts.WriteTimeout < 0:
		return nil, invalid("negative duration in %+v", opts)
	case opts.Full > FullError:
		return nil, invalid("unknown full-queue policy %d", opts.Full)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&opts.BatchSize, 100)
	def(&opts.QueueSize, 10_000)
	defd(&opts.Interval, time.Second)
	defd(&opts.MinBackoff, 10*time.Millisecond)
	defd(&opts.MaxBackoff, 10*time.Second)
	defd(&opts.WriteTimeout, 10*time.Second)
	if opts.MaxBackoff < opts.MinBackoff {
		return nil, invalid("MaxBackoff %v below MinBackoff %v", opts.MaxBackoff, opts.MinBackoff)
	}
	w := &WriteBehind[K, V]{
		store: store, dst: dst, opts: opts,
		pending: make(map[K]*Write[K, V]), changed: make(chan struct{}),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		closing: make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(ctx)
	return w, nil
}

// errZeroWriteBehind is what a zero WriteBehind's methods return.
var errZeroWriteBehind = errZero("WriteBehind", "NewWriteBehind")

// Set stores value in the cache and queues it for the source. It returns
// once both are done; the source is written later.
func (w *WriteBehind[K, V]) Set(ctx context.Context, key K, value V) error {
	return w.enqueue(ctx, Write[K, V]{Key: key, Value: value})
}

// Delete removes key from the cache and queues its deletion in the source.
func (w *WriteBehind[K, V]) Delete(ctx context.Context, key K) error {
	return w.enqueue(ctx, Write[K, V]{Key: key, Delete: true})
}

// enqueue waits for room, then updates the cache and the queue under one
// lock, so the cache and the source see concurrent writes of a key in the
// same order.
func (w *WriteBehind[K, V]) enqueue(ctx context.Context, wr Write[K, V]) error {
	if w.done == nil {
		return errZeroWriteBehind
	}
	w.mu.Lock()
	for {
		if w.closed {
			w.mu.Unlock()
			return fmt.Errorf("%w: write-behind writer is closed (key %v)", ErrClosed, wr.Key)
		}
		if _, queued := w.pending[wr.Key]; queued || len(w.pending)+len(w.inflight) < w.opts.QueueSize {
			break
		}
		if w.opts.Full == FullError {
			w.mu.Unlock()
			return fmt.Errorf("%w: %d writes queued (key %v)", ErrQueueFull, w.opts.QueueSize, wr.Key)
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cache: waiting for write-behind queue room (key %v): %w", wr.Key, context.Cause(ctx))
		}
		w.mu.Lock()
	}
	var err error
	if wr.Delete {
		err = w.store.Delete(ctx, wr.Key)
	} else {
		err = w.store.Set(ctx, wr.Key, wr.Value, w.opts.TTL)
	}
	if err != nil {
		w.mu.Unlock()
		return fmt.Errorf("cache: write-behind cache update of key %v (not queued): %w", wr.Key, err)
	}
	w.stats.accepted.Add(1)
	if p, ok := w.pending[wr.Key]; ok {
		*p = wr
		w.stats.coalesced.Add(1)
	} else {
		w.pending[wr.Key] = &wr
		w.order = append(w.order, wr.Key)
	}
	full := len(w.pending) >= w.opts.BatchSize
	w.mu.Unlock()
	if full {
		w.wake()
	}
	return nil
}

func (w *WriteBehind[K, V]) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// notify wakes everyone waiting for a change. It requires w.mu.
func (w *WriteBehind[K, V]) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// run is the flusher: it writes full batches at once and everything else
// every Interval, until stop. Batches are written under ctx, which Close
// cancels when its own context ends.
func (w *WriteBehind[K, V]) run(ctx context.Context) {
	defer func() {
		w.mu.Lock()
		w.stopped = true
		w.notify()
		w.mu.Unlock()
		close(w.done)
	}()
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-w.kick:
			w.drain(ctx)
		case <-t.C:
			w.drain(ctx)
		}
	}
}

// drain writes batches until the queue is empty or stop is closed.
func (w *WriteBehind[K, V]) drain(ctx context.Context) {
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		w.mu.Lock()
		n := len(w.order)
		if n == 0 {
			w.mu.Unlock()
			return
		}
		n = min(n, w.opts.BatchSize)
		batch := make([]Write[K, V], 0, n)
		for _, k := range w.order[:n] {
			batch = append(batch, *w.pending[k])
			delete(w.pending, k)
		}
		w.order = append(w.order[:0], w.order[n:]...)
		w.inflight = batch
		w.mu.Unlock()
		if !w.write(ctx, batch) {
			return
		}
	}
}

// write sends one batch, retrying with backoff until it succeeds (true) or
// stop is closed (false, and the batch is queued again).
func (w *WriteBehind[K, V]) write(ctx context.Context, batch []Write[K, V]) bool {
	backoff := w.opts.MinBackoff
	for {
		bctx, cancel := context.WithTimeout(ctx, w.opts.WriteTimeout)
		err := w.dst.WriteBatch(bctx, batch)
		cancel()
		if w.opts.OnFlush != nil {
			w.opts.OnFlush(len(batch), err)
		}
		w.mu.Lock()
		if err == nil {
			w.inflight = nil
			w.stats.written.Add(uint64(len(batch)))
			w.stats.batches.Add(1)
			w.notify()
			w.mu.Unlock()
			return true
		}
		w.stats.failures.Add(1)
		w.lastErr = err
		w.notify()
		w.mu.Unlock()
		select {
		case <-w.stop: // Close gave up: keep the batch, start no retry
			w.requeue(batch)
			return false
		default:
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-w.stop:
			t.Stop()
			w.requeue(batch)
			return false
		}
		backoff = min(2*backoff, w.opts.MaxBackoff)
	}
}

// requeue puts an unwritten batch back at the head of the queue; keys
// written again since are newer and win.
func (w *WriteBehind[K, V]) requeue(batch []Write[K, V]) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var keys []K
	for _, wr := range batch {
		if _, newer := w.pending[wr.Key]; !newer {
			wr := wr
			w.pending[wr.Key] = &wr
			keys = append(keys, wr.Key)
		}
	}
	w.order = append(keys, w.order...)
	w.inflight = nil
	w.notify()
}

// Flush writes everything queued to the source and returns when the queue
// is empty, or with the context's error (joined with the last source
// error) when ctx ends first; the writes stay queued. Writes that arrive
// meanwhile are flushed too. After Close has stopped the flusher, Flush
// returns at once: nil if nothing is left, else an [*UnflushedError]
// wrapping [ErrClosed].
func (w *WriteBehind[K, V]) Flush(ctx context.Context) error {
	if w.done == nil {
		return errZeroWriteBehind
	}
	for {
		w.mu.Lock()
		if len(w.order) == 0 && w.inflight == nil {
			w.mu.Unlock()
			return nil
		}
		if w.stopped {
			keys := w.unflushedKeys()
			w.mu.Unlock()
			return &UnflushedError[K]{Keys: keys, Cause: fmt.Errorf("%w: flush after Close", ErrClosed)}
		}
		ch, last := w.changed, w.lastErr
		w.mu.Unlock()
		w.wake()
		select {
		case <-ch:
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("cache: write-behind flush: %w", context.Cause(ctx)), last)
		}
	}
}

// Close stops accepting writes, flushes the queue and stops the flusher.
// If ctx ends first, Close cancels the context of the batch being written,
// starts no other, waits for that one call to return and returns an
// [*UnflushedError] with exactly the keys not in the source;
// [WriteBehind.Unflushed] returns those writes. A [BatchWriter] that
// ignores its context holds Close until it returns. Calling Close again
// waits for the first call (or for its own ctx) and returns the same
// error.
func (w *WriteBehind[K, V]) Close(ctx context.Context) error {
	if w.done == nil {
		return errZeroWriteBehind
	}
	w.closeMu.Lock()
	first := !w.closedOnce()
	if first {
		w.mu.Lock()
		w.closed = true
		w.notify()
		w.mu.Unlock()
	}
	w.closeMu.Unlock()
	if !first {
		select {
		case <-w.closing:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for another Close: %w", ErrClosed, context.Cause(ctx))
		}
		w.closeMu.Lock()
		defer w.closeMu.Unlock()
		return w.closeErr
	}
	ferr := w.Flush(ctx)
	close(w.stop)
	if ferr != nil {
		w.cancel()
	}
	<-w.done
	w.cancel()
	var err error
	w.mu.Lock()
	if keys := w.unflushedKeys(); len(keys) > 0 {
		err = &UnflushedError[K]{Keys: keys, Cause: ferr}
	}
	w.mu.Unlock()
	w.closeMu.Lock()
	w.closeErr = err
	close(w.closing)
	w.closeMu.Unlock()
	return err
}

// closedOnce reports whether Close has begun. It requires w.closeMu.
func (w *WriteBehind[K, V]) closedOnce() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// unflushedKeys returns the keys not in the source, oldest first. It
// requires w.mu.
func (w *WriteBehind[K, V]) unflushedKeys() []K {
	keys := make([]K, 0, len(w.inflight)+len(w.order))
	for _, wr := range w.inflight {
		keys = append(keys, wr.Key)
	}
	return append(keys, w.order...)
}

// Unflushed returns the writes still queued, oldest first: after a Close
// that ran out of time, the writes the caller must keep elsewhere.
func (w *WriteBehind[K, V]) Unflushed() []Write[K, V] {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append([]Write[K, V](nil), w.inflight...)
	for _, k := range w.order {
		out = append(out, *w.pending[k])
	}
	return out
}

// Stats returns the writer's counters.
func (w *WriteBehind[K, V]) Stats() WriteBehindStats {
	w.mu.Lock()
	q := len(w.order) + len(w.inflight)
	w.mu.Unlock()
	return WriteBehindStats{
		Queued: q, Accepted: w.stats.accepted.Load(), Coalesced: w.stats.coalesced.Load(),
		Written: w.stats.written.Load(), Batches: w.stats.batches.Load(), Failures: w.stats.failures.Load(),
	}
}

package cache

import (
	"context"
	"errors"
	"fmt"
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
// [WriteBehind.Close] drain the queue; if Close's context ends first, the
// writes still queued are returned by [WriteBehind.Unflushed] so the caller
// can keep them — an acknowledged write is never silently lost while the
// process lives. What the pattern cannot avoid is the guide's "potential
// data loss": a crash loses the queue (see [WriteBehindStats.Queued] and
// the lab's write-behind experiment for how much is at risk).

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
// its flusher goroutine ends there.
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
	lastErr  error              // guarded by mu

	kick   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	stats  struct{ accepted, coalesced, written, batches, failures atomic.Uint64 }
	closer sync.Once
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
	}
	go w.run()
	return w, nil
}

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
		err = w.store.Remove(ctx, wr.Key)
	} else {
		err = w.store.Save(ctx, wr.Key, wr.Value, w.opts.TTL)
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
// every Interval, until stop.
func (w *WriteBehind[K, V]) run() {
	defer close(w.done)
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-w.kick:
			w.drain()
		case <-t.C:
			w.drain()
		}
	}
}

// drain writes batches until the queue is empty or stop is closed.
func (w *WriteBehind[K, V]) drain() {
	for {
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
		if !w.write(batch) {
			return
		}
	}
}

// write sends one batch, retrying with backoff until it succeeds (true) or
// stop is closed (false, and the batch is queued again).
func (w *WriteBehind[K, V]) write(batch []Write[K, V]) bool {
	backoff := w.opts.MinBackoff
	for {
		ctx, cancel := context.WithTimeout(context.Background(), w.opts.WriteTimeout)
		err := w.dst.WriteBatch(ctx, batch)
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
// error) when ctx ends first. Writes that arrive meanwhile are flushed too.
func (w *WriteBehind[K, V]) Flush(ctx context.Context) error {
	for {
		w.mu.Lock()
		if len(w.order) == 0 && w.inflight == nil {
			w.mu.Unlock()
			return nil
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
// If ctx ends before the queue is empty, Close stops anyway and returns an
// error saying how many writes were not written; [WriteBehind.Unflushed]
// returns them. Close is idempotent; later calls return nil.
func (w *WriteBehind[K, V]) Close(ctx context.Context) error {
	var err error
	w.closer.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.notify()
		w.mu.Unlock()
		ferr := w.Flush(ctx)
		close(w.stop)
		<-w.done
		if ferr != nil {
			w.mu.Lock()
			n := len(w.order)
			w.mu.Unlock()
			err = fmt.Errorf("cache: write-behind closed with %d writes not in the source (see Unflushed): %w", n, ferr)
		}
	})
	return err
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

package resilience

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// BulkheadOptions configure a [Bulkhead]. The zero value has no wait queue:
// a call that finds every slot taken is rejected at once.
type BulkheadOptions struct {
	// Name identifies the pool in errors. Default "".
	Name string
	// MaxWaiting is how many calls may wait for a slot. Default 0.
	MaxWaiting int
	// MaxWait bounds one call's wait for a slot. Default 0: wait until a
	// slot frees or the caller's context ends.
	MaxWait time.Duration
	// Now stamps permits. Default time.Now.
	Now func() time.Time
}

// Bulkhead bounds the number of concurrent calls to one dependency, with an
// optional bounded wait queue: the ship's watertight compartments. Give
// each dependency its own Bulkhead, so a slow one can hold at most its own
// pool's goroutines and calls to healthy dependencies keep their capacity.
//
// Pros: isolates failures; bounds memory and goroutines. Cons: a pool too
// small rejects calls under normal peaks; pools fragment capacity that a
// shared pool would have used fully.
//
// A Bulkhead is safe for concurrent use. It is a [Guard]; use [Guarded] to
// put it in a [Pipeline].
type Bulkhead struct {
	name       string
	sem        chan struct{}
	maxWaiting int64
	maxWait    time.Duration
	now        func() time.Time

	waiting                      atomic.Int64
	admitted, rejectedN, waitedN counter
}

// BulkheadStats is a snapshot of a bulkhead.
type BulkheadStats struct {
	// InUse slots and Waiting calls now; Capacity is the pool size.
	InUse, Waiting, Capacity int
	// Admitted, Rejected and Waited (admitted after queueing) since start.
	Admitted, Rejected, Waited uint64
}

// NewBulkhead returns a pool of maxConcurrent (≥ 1) slots.
func NewBulkhead(maxConcurrent int, opts BulkheadOptions) (*Bulkhead, error) {
	switch {
	case maxConcurrent < 1:
		return nil, configError("bulkhead %q needs maxConcurrent >= 1, got %d", opts.Name, maxConcurrent)
	case opts.MaxWaiting < 0:
		return nil, configError("bulkhead %q MaxWaiting must not be negative, got %d", opts.Name, opts.MaxWaiting)
	case opts.MaxWait < 0:
		return nil, configError("bulkhead %q MaxWait must not be negative, got %v", opts.Name, opts.MaxWait)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Bulkhead{name: opts.Name, sem: make(chan struct{}, maxConcurrent), maxWaiting: int64(opts.MaxWaiting), maxWait: opts.MaxWait, now: opts.Now}, nil
}

// TryAcquire takes a slot if one is free, without waiting.
func (b *Bulkhead) TryAcquire() bool {
	select {
	case b.sem <- struct{}{}:
		b.admitted.add()
		return true
	default:
		return false
	}
}

// Release frees a slot taken by TryAcquire or Enter.
func (b *Bulkhead) Release() { <-b.sem }

// Enter takes a slot, waiting in the queue if there is room. It returns a
// [*PolicyError] wrapping [ErrBulkheadFull] (and the context's error, if
// the wait ended with it) when it cannot.
func (b *Bulkhead) Enter(ctx context.Context) (Permit, error) {
	if b.TryAcquire() {
		return Permit{Start: b.now(), Ctx: ctx}, nil
	}
	if b.waiting.Add(1) > b.maxWaiting {
		b.waiting.Add(-1)
		b.rejectedN.add()
		return Permit{}, rejected("bulkhead", b.name, ErrBulkheadFull, nil)
	}
	defer b.waiting.Add(-1)
	var timeout <-chan time.Time
	if b.maxWait > 0 {
		t := time.NewTimer(b.maxWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case b.sem <- struct{}{}:
		b.admitted.add()
		b.waitedN.add()
		return Permit{Start: b.now(), Ctx: ctx}, nil
	case <-timeout:
		b.rejectedN.add()
		return Permit{}, rejected("bulkhead", b.name, ErrBulkheadFull, context.DeadlineExceeded)
	case <-ctx.Done():
		b.rejectedN.add()
		return Permit{}, rejected("bulkhead", b.name, ErrBulkheadFull, context.Cause(ctx))
	}
}

// Exit frees the permit's slot.
func (b *Bulkhead) Exit(Permit, error) { b.Release() }

// Stats returns a snapshot of the pool.
func (b *Bulkhead) Stats() BulkheadStats {
	return BulkheadStats{
		InUse: len(b.sem), Waiting: int(b.waiting.Load()), Capacity: cap(b.sem),
		Admitted: b.admitted.load(), Rejected: b.rejectedN.load(), Waited: b.waitedN.load(),
	}
}

// Bulkheads keeps one [Bulkhead] per dependency, created on first use with
// the same size and options (the pool's Name is the dependency's name), so
// that every dependency gets its own compartment without wiring each one by
// hand. It is safe for concurrent use.
type Bulkheads struct {
	size int
	opts BulkheadOptions

	mu    sync.Mutex
	pools map[string]*Bulkhead // guarded by mu
}

// NewBulkheads returns a set of pools of maxConcurrent (≥ 1) slots each.
func NewBulkheads(maxConcurrent int, opts BulkheadOptions) (*Bulkheads, error) {
	if _, err := NewBulkhead(maxConcurrent, opts); err != nil {
		return nil, err
	}
	return &Bulkheads{size: maxConcurrent, opts: opts, pools: map[string]*Bulkhead{}}, nil
}

// For returns the pool of dependency, creating it on first use.
func (s *Bulkheads) For(dependency string) *Bulkhead {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.pools[dependency]
	if b == nil {
		o := s.opts
		o.Name = dependency
		b, _ = NewBulkhead(s.size, o) // options were validated by NewBulkheads
		s.pools[dependency] = b
	}
	return b
}

// Stats returns a snapshot of every pool, by dependency.
func (s *Bulkheads) Stats() map[string]BulkheadStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]BulkheadStats, len(s.pools))
	for name, b := range s.pools {
		out[name] = b.Stats()
	}
	return out
}

package resilience

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// BulkheadOptions configure a [Bulkhead]. MaxConcurrent is required;
// every other field's zero value is a default, so
// BulkheadOptions{MaxConcurrent: 8} admits 8 calls at once and rejects
// the ninth at once, with no wait queue.
type BulkheadOptions struct {
	// Name identifies the pool in errors. Default "".
	Name string
	// MaxConcurrent is the number of slots: how many calls run at once.
	// It is required — 0 or negative is an error, not a default — because
	// the right size depends on the dependency. Each slot costs a word of
	// memory.
	MaxConcurrent int
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
// A slot is taken as a [BulkheadSlot] value and given back by its Release,
// which frees the slot once however often it is called: there is no way to
// give back a slot that was not taken, or to give one back twice, so a
// misuse can neither block the caller nor let more calls in than the pool
// holds.
//
//	slot, err := b.Acquire(ctx)
//	if err != nil {
//		return err // wraps ErrBulkheadFull
//	}
//	defer slot.Release()
//
// A Bulkhead is safe for concurrent use. Make one with [NewBulkhead]: the
// zero value has no slots, and its Acquire and Enter return an error
// wrapping [ErrInvalidConfig]. It is a [Guard]; use [Guarded] to put it in
// a [Pipeline].
type Bulkhead struct {
	name string
	// free holds the indexes of the free slots: Acquire receives one,
	// Release sends it back. Only a slot that was taken is sent back, so
	// the send never blocks.
	free chan uint32
	// gens counts, per slot, its acquisitions and releases: odd while the
	// slot is held. A BulkheadSlot remembers the odd value it was given,
	// and its Release frees the slot only while the value is unchanged.
	gens       []atomic.Uint64
	maxWaiting int64
	maxWait    time.Duration
	now        func() time.Time

	waiting                      atomic.Int64
	admitted, rejectedN, waitedN counter
}

// BulkheadSlot is one slot of a [Bulkhead], held from [Bulkhead.TryAcquire]
// or [Bulkhead.Acquire] until Release. It is a small value that costs no
// allocation; copies of it are the same slot.
type BulkheadSlot struct {
	b   *Bulkhead
	i   uint32
	gen uint64 // the slot's generation when it was taken: odd
}

// Release gives the slot back to its bulkhead. Only the first Release of a
// slot (or of any copy of it) frees it; later calls, and Release on the
// zero BulkheadSlot, do nothing. It never blocks.
func (s BulkheadSlot) Release() {
	if s.b != nil && s.b.gens[s.i].CompareAndSwap(s.gen, s.gen+1) {
		s.b.free <- s.i
	}
}

// BulkheadStats is a snapshot of a bulkhead.
type BulkheadStats struct {
	// InUse slots and Waiting calls now; Capacity is the pool size.
	InUse, Waiting, Capacity int
	// Admitted, Rejected and Waited (admitted after queueing) since start.
	Admitted, Rejected, Waited uint64
}

// NewBulkhead returns a pool of opts.MaxConcurrent slots.
func NewBulkhead(opts BulkheadOptions) (*Bulkhead, error) {
	maxConcurrent := opts.MaxConcurrent
	switch {
	case maxConcurrent < 1:
		return nil, configError("bulkhead %q MaxConcurrent must be set to at least 1, got %d", opts.Name, maxConcurrent)
	case int64(maxConcurrent) > math.MaxUint32:
		return nil, configError("bulkhead %q MaxConcurrent must be at most %d, got %d", opts.Name, uint32(math.MaxUint32), maxConcurrent)
	case opts.MaxWaiting < 0:
		return nil, configError("bulkhead %q MaxWaiting must not be negative, got %d", opts.Name, opts.MaxWaiting)
	case opts.MaxWait < 0:
		return nil, configError("bulkhead %q MaxWait must not be negative, got %v", opts.Name, opts.MaxWait)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &Bulkhead{
		name: opts.Name, free: make(chan uint32, maxConcurrent), gens: make([]atomic.Uint64, maxConcurrent),
		maxWaiting: int64(opts.MaxWaiting), maxWait: opts.MaxWait, now: opts.Now,
	}
	for i := range maxConcurrent {
		b.free <- uint32(i)
	}
	return b, nil
}

// take hands out slot i, just received from b.free.
func (b *Bulkhead) take(i uint32) BulkheadSlot {
	b.admitted.add()
	return BulkheadSlot{b: b, i: i, gen: b.gens[i].Add(1)}
}

// TryAcquire takes a slot if one is free, without waiting. The zero
// Bulkhead has none.
func (b *Bulkhead) TryAcquire() (BulkheadSlot, bool) {
	select {
	case i := <-b.free:
		return b.take(i), true
	default:
		return BulkheadSlot{}, false
	}
}

// Acquire takes a slot, waiting in the queue if there is room. It returns
// a [*PolicyError] wrapping [ErrBulkheadFull] (and the context's error, if
// the wait ended with it) when it cannot, and an error wrapping
// [ErrInvalidConfig] at once for a Bulkhead not made by [NewBulkhead].
func (b *Bulkhead) Acquire(ctx context.Context) (BulkheadSlot, error) {
	if b == nil || b.free == nil {
		return BulkheadSlot{}, b.unusable()
	}
	if s, ok := b.TryAcquire(); ok {
		return s, nil
	}
	if b.waiting.Add(1) > b.maxWaiting {
		b.waiting.Add(-1)
		b.rejectedN.add()
		return BulkheadSlot{}, rejected("bulkhead", b.name, ErrBulkheadFull, nil)
	}
	defer b.waiting.Add(-1)
	var timeout <-chan time.Time
	if b.maxWait > 0 {
		t := time.NewTimer(b.maxWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case i := <-b.free:
		b.waitedN.add()
		return b.take(i), nil
	case <-timeout:
		b.rejectedN.add()
		return BulkheadSlot{}, rejected("bulkhead", b.name, ErrBulkheadFull, context.DeadlineExceeded)
	case <-ctx.Done():
		b.rejectedN.add()
		return BulkheadSlot{}, rejected("bulkhead", b.name, ErrBulkheadFull, context.Cause(ctx))
	}
}

// unusable is the error of a nil or zero Bulkhead, which has no slots.
func (b *Bulkhead) unusable() error {
	if b == nil {
		return notMade("nil *Bulkhead", "NewBulkhead")
	}
	return notMade(fmt.Sprintf("bulkhead %q (it has no slots)", b.name), "NewBulkhead or NewBulkheads")
}

// Enter is Acquire for a [Guard]: the permit carries the slot, which
// [Bulkhead.Exit] releases.
func (b *Bulkhead) Enter(ctx context.Context) (Permit, error) {
	s, err := b.Acquire(ctx)
	if err != nil {
		return Permit{}, err
	}
	return Permit{Start: b.now(), Ctx: ctx, slot: s}, nil
}

// Exit releases the permit's slot. Like [BulkheadSlot.Release], it frees a
// slot only once, and does nothing for a permit that holds none (the zero
// Permit, one Exit already released, or one another guard issued).
func (b *Bulkhead) Exit(p Permit, _ error) {
	if p.slot.b == b {
		p.slot.Release()
	}
}

// Stats returns a snapshot of the pool.
func (b *Bulkhead) Stats() BulkheadStats {
	return BulkheadStats{
		InUse: cap(b.free) - len(b.free), Waiting: int(b.waiting.Load()), Capacity: cap(b.free),
		Admitted: b.admitted.load(), Rejected: b.rejectedN.load(), Waited: b.waitedN.load(),
	}
}

// Bulkheads keeps one [Bulkhead] per dependency, created on first use with
// the same options (the pool's Name is the dependency's name), so that
// every dependency gets its own compartment without wiring each one by
// hand. It is safe for concurrent use.
type Bulkheads struct {
	opts BulkheadOptions

	mu    sync.Mutex
	pools map[string]*Bulkhead // guarded by mu
}

// NewBulkheads returns a set of pools of opts.MaxConcurrent slots each.
func NewBulkheads(opts BulkheadOptions) (*Bulkheads, error) {
	if _, err := NewBulkhead(opts); err != nil {
		return nil, err
	}
	return &Bulkheads{opts: opts, pools: map[string]*Bulkhead{}}, nil
}

// For returns the pool of dependency, creating it on first use. The pools
// of a zero Bulkheads (not made by [NewBulkheads]) have no slots: their
// Acquire and Enter return an error wrapping [ErrInvalidConfig].
func (s *Bulkheads) For(dependency string) *Bulkhead {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.pools[dependency]
	if b == nil {
		o := s.opts
		o.Name = dependency
		if b, _ = NewBulkhead(o); b == nil { // NewBulkheads validated the options
			b = &Bulkhead{name: dependency}
		}
		if s.pools == nil {
			s.pools = map[string]*Bulkhead{}
		}
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

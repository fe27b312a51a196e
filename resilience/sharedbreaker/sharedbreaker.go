package sharedbreaker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/internal/hook"
)

// Options configure a [Breaker]. Store and Name are required; the zero
// value of every other field is a default.
type Options struct {
	// Store holds the state every instance shares: a [MemoryStore] within
	// one process, a redisbreaker.Store across processes. Required.
	Store Store
	// Name is the breaker's name in the store: every instance protecting
	// the same dependency uses the same name. It must not be empty or
	// contain braces.
	Name string
	// Rules are the trip and recovery rules; see [Rules] for each
	// field's default.
	Rules Rules
	// CacheTTL is how long an instance trusts its copy of the state before
	// asking the store again. A closed breaker costs one store round trip
	// per call (recording the outcome, which also refreshes the copy); an
	// open one costs none until its timeout. Other instances see a trip
	// within CacheTTL, or at their next recorded call. Default 100 ms.
	CacheTTL time.Duration
	// StoreTimeout bounds each store call. Default 100 ms.
	StoreTimeout time.Duration
	// SlowCallThreshold makes slower calls count as failures. Default 0.
	SlowCallThreshold time.Duration
	// IsSuccessful and IsExcluded classify errors as for
	// resilience.BreakerOptions.
	IsSuccessful func(err error) bool
	IsExcluded   func(err error) bool
	// OnStateChange is called when this instance observes a transition,
	// never under a lock. Default nil.
	OnStateChange func(resilience.StateChange)
	// Now is the clock (virtual time in simulations). Default time.Now.
	Now func() time.Time
}

// Breaker is a circuit breaker whose state is shared by every
// instance through a [Store]: when one instance's calls trip it,
// all instances open. Unlike gobreaker's DistributedCircuitBreaker, which
// holds one cluster-wide lock around every call (so the whole fleet makes
// one call to the dependency at a time), it never serialises calls: outcomes
// go to per-bucket counters, transitions are an atomic compare-and-set on
// the generation inside the store (a Lua script in Redis), and each
// instance caches the state for CacheTTL.
//
// Pros: a fleet stops hammering a dead dependency together, and a new
// instance starts with the fleet's knowledge. Cons: one store round trip
// per call in the closed state (the Redis latency is added to every call's
// overhead, not its path: the call itself runs in parallel), and a store
// outage makes it fail open — it keeps calling, with the last state it saw.
//
// A Breaker is safe for concurrent use.
type Breaker[T any] struct {
	name    string
	store   Store
	rules   Rules
	ttl     time.Duration
	timeout time.Duration
	slow    time.Duration
	isOK    func(error) bool
	isExcl  func(error) bool
	now     func() time.Time
	events  hook.Queue[resilience.StateChange]

	mu       sync.Mutex
	cached   Snapshot  // guarded by mu
	cachedAt time.Time // guarded by mu
	valid    bool      // guarded by mu

	calls, successes, failures, excluded, rejectedN, storeErrors atomic.Uint64
}

// Stats is a snapshot of one instance's view and counters.
type Stats struct {
	State      resilience.State
	Generation uint64
	// Calls ran fn; Rejected were short-circuited.
	Calls, Rejected               uint64
	Successes, Failures, Excluded uint64
	// StoreErrors counts store calls that failed (the breaker then fails
	// open).
	StoreErrors uint64
}

// New returns an instance of the shared breaker opts.Name in opts.Store.
func New[T any](opts Options) (*Breaker[T], error) {
	if opts.Store == nil {
		return nil, configError("shared breaker needs a Store")
	}
	if opts.Name == "" || strings.ContainsAny(opts.Name, "{}") {
		return nil, configError("shared breaker name %q must be non-empty and contain no braces", opts.Name)
	}
	r := opts.Rules
	setDefault(&r.Window, 10*time.Second)
	setDefault(&r.Buckets, 10)
	setDefault(&r.MinRequests, 20)
	setDefault(&r.FailureRate, 0.5)
	setDefault(&r.Timeout, 60*time.Second)
	setDefault(&r.HalfOpenRequests, 1)
	setDefault(&opts.CacheTTL, 100*time.Millisecond)
	setDefault(&opts.StoreTimeout, 100*time.Millisecond)
	switch {
	case r.Window < 0:
		return nil, configError("shared breaker Window must be positive, got %v", r.Window)
	case r.Buckets < 1 || r.Window/time.Duration(r.Buckets) < time.Millisecond:
		return nil, configError("shared breaker Buckets must be >= 1 with buckets of at least 1ms, got %d over %v", r.Buckets, r.Window)
	case r.MinRequests < 1:
		return nil, configError("shared breaker MinRequests must be >= 1, got %d", r.MinRequests)
	case !(r.FailureRate > 0 && r.FailureRate <= 1):
		return nil, configError("shared breaker FailureRate must be in (0, 1], got %v", r.FailureRate)
	case r.Timeout < time.Millisecond:
		return nil, configError("shared breaker Timeout must be at least 1ms, got %v", r.Timeout)
	case r.HalfOpenRequests < 1:
		return nil, configError("shared breaker HalfOpenRequests must be >= 1, got %d", r.HalfOpenRequests)
	case opts.CacheTTL < 0:
		return nil, configError("shared breaker CacheTTL must not be negative, got %v", opts.CacheTTL)
	case opts.StoreTimeout < 0:
		return nil, configError("shared breaker StoreTimeout must be positive, got %v", opts.StoreTimeout)
	case opts.SlowCallThreshold < 0:
		return nil, configError("shared breaker SlowCallThreshold must not be negative, got %v", opts.SlowCallThreshold)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &Breaker[T]{
		name: opts.Name, store: opts.Store, rules: r, ttl: opts.CacheTTL, timeout: opts.StoreTimeout,
		slow: opts.SlowCallThreshold, isOK: opts.IsSuccessful, isExcl: opts.IsExcluded, now: opts.Now,
	}
	b.events.Hook = opts.OnStateChange
	return b, nil
}

// observe replaces the cached state, queueing a hook event if it changed.
func (b *Breaker[T]) observe(st Snapshot, at time.Time) {
	b.mu.Lock()
	if b.valid && st.Generation < b.cached.Generation {
		b.mu.Unlock() // an older answer raced a newer one
		return
	}
	prev, had := b.cached.State, b.valid
	b.cached, b.cachedAt, b.valid = st, at, true
	b.mu.Unlock()
	if (had && prev != st.State) || (!had && st.State != resilience.StateClosed) {
		b.events.Push(resilience.StateChange{Name: b.name, From: prev, To: st.State})
	}
}

func (b *Breaker[T]) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
}

// Allow asks whether a call may go now and returns the generation to
// record its outcome under. It is the first half of [Breaker.Execute]
// for callers that cannot wrap the call in a function (simulations, async
// callbacks); every allowed call must be followed by
// [Breaker.Done].
func (b *Breaker[T]) Allow(ctx context.Context) (gen uint64, err error) {
	if b == nil || b.store == nil {
		return 0, notMade()
	}
	now := b.now()
	b.mu.Lock()
	st, fresh := b.cached, b.valid && now.Sub(b.cachedAt) < b.ttl
	b.mu.Unlock()
	switch {
	case fresh && st.State == resilience.StateClosed:
		return st.Generation, nil
	case fresh && st.State == resilience.StateOpen && now.Before(st.OpenUntil):
		b.rejectedN.Add(1)
		return 0, rejected(b.name)
	}
	sctx, cancel := b.storeCtx(ctx)
	st2, ok, err := b.store.Acquire(sctx, b.name, now, b.rules)
	cancel()
	if err != nil {
		// Fail open: the breaker protects the dependency, not the store.
		b.storeErrors.Add(1)
		return st.Generation, nil
	}
	b.observe(st2, now)
	b.events.Flush()
	if !ok {
		b.rejectedN.Add(1)
		return 0, rejected(b.name)
	}
	return st2.Generation, nil
}

// Done records the outcome of a call allowed under gen that took took and
// ended with err (ctx is the caller's: an error after it ended is
// excluded). On a Breaker New did not make, whose
// Allow allows nothing, it does nothing.
func (b *Breaker[T]) Done(ctx context.Context, gen uint64, took time.Duration, err error) {
	if b == nil || b.store == nil {
		return
	}
	b.calls.Add(1)
	o := OutcomeSuccess
	switch {
	case err != nil && (ctx.Err() != nil || (b.isExcl != nil && b.isExcl(err))):
		o = OutcomeExcluded
		b.excluded.Add(1)
	case err != nil && (b.isOK == nil || !b.isOK(err)), b.slow > 0 && took > b.slow:
		o = OutcomeFailure
		b.failures.Add(1)
	default:
		b.successes.Add(1)
	}
	b.mu.Lock()
	cur := b.cached
	b.mu.Unlock()
	if o == OutcomeExcluded && cur.State != resilience.StateHalfOpen {
		return // nothing to give back
	}
	now := b.now()
	sctx, cancel := b.storeCtx(ctx)
	st, serr := b.store.Record(sctx, b.name, gen, o, now, b.rules)
	cancel()
	if serr != nil {
		b.storeErrors.Add(1)
		return
	}
	b.observe(st, now)
	b.events.Flush()
}

// Execute runs fn if the shared breaker lets the call through; a rejected
// call returns a [*resilience.PolicyError] wrapping [resilience.ErrOpen] without running fn.
func (b *Breaker[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if b == nil || b.store == nil {
		return zero, notMade()
	}
	if fn == nil {
		return zero, configError("shared breaker %q: nil function", b.name)
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	gen, err := b.Allow(ctx)
	if err != nil {
		return zero, err
	}
	start := b.now()
	v, err := fn(ctx)
	b.Done(ctx, gen, b.now().Sub(start), err)
	return v, err
}

// State returns the state in the store (or the cached one if the store
// fails, or if New did not make b).
func (b *Breaker[T]) State(ctx context.Context) resilience.State {
	if b.store == nil {
		return b.cached.State
	}
	now := b.now()
	sctx, cancel := b.storeCtx(ctx)
	st, err := b.store.Load(sctx, b.name, now, b.rules)
	cancel()
	if err != nil {
		b.storeErrors.Add(1)
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.cached.State
	}
	b.observe(st, now)
	b.events.Flush()
	return st.State
}

// Stats returns this instance's view and counters (without asking the
// store).
func (b *Breaker[T]) Stats() Stats {
	b.mu.Lock()
	st := b.cached
	b.mu.Unlock()
	return Stats{
		State: st.State, Generation: st.Generation, Calls: b.calls.Load(), Rejected: b.rejectedN.Load(),
		Successes: b.successes.Load(), Failures: b.failures.Load(), Excluded: b.excluded.Load(), StoreErrors: b.storeErrors.Load(),
	}
}

var _ resilience.Policy[int] = (*Breaker[int])(nil)

func setDefault[V comparable](p *V, def V) {
	var zero V
	if *p == zero {
		*p = def
	}
}

// configError returns an error wrapping resilience.ErrInvalidConfig that
// names the bad value.
func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{resilience.ErrInvalidConfig}, args...)...)
}

func notMade() error { return configError("shared breaker not made by sharedbreaker.New") }

func rejected(name string) error {
	return &resilience.PolicyError{Policy: "breaker", Name: name, Kind: resilience.ErrOpen}
}

package resilience

import (
	"context"
	"strings"
	"sync"
	"time"
)

// SharedState is a shared breaker's state as its store holds it.
type SharedState struct {
	State State
	// Generation increases on every transition; outcomes of calls admitted
	// under an older generation are ignored.
	Generation uint64
	// OpenUntil is when an open breaker goes half-open; while half-open, when
	// the current probes' lease ends and new probes may go.
	OpenUntil time.Time
}

// Outcome is a finished call's verdict, as recorded in a [BreakerStore].
type Outcome int

const (
	// OutcomeSuccess counts towards closing a half-open breaker.
	OutcomeSuccess Outcome = iota
	// OutcomeFailure counts towards opening (slow calls included).
	OutcomeFailure
	// OutcomeExcluded gives a half-open probe slot back without a verdict
	// (the caller cancelled); it is not counted.
	OutcomeExcluded
)

// BreakerRules are the trip and recovery rules a [BreakerStore] applies;
// every instance of one shared breaker must use the same rules. In
// [SharedBreakerOptions] the zero value of each field is its default.
type BreakerRules struct {
	// Window over which the failure rate is computed, in Buckets buckets.
	// Defaults 10 s and 10; a bucket must be at least 1 ms.
	Window  time.Duration
	Buckets int
	// The breaker opens when a window holds at least MinRequests calls
	// (default 20) and at least FailureRate (in (0, 1], default 0.5) of
	// them failed.
	MinRequests int
	FailureRate float64
	// Timeout is how long it stays open, and how long half-open probes may
	// take before others are let through. Default 60 s.
	Timeout time.Duration
	// HalfOpenRequests probes are let through when half-open; that many
	// successes close it. Default 1.
	HalfOpenRequests int
}

func (r BreakerRules) bucket() time.Duration { return r.Window / time.Duration(r.Buckets) }

// BreakerStore holds the state of shared circuit breakers: the transitions
// are applied atomically by the store, so any number of [SharedBreaker]
// instances — goroutines or processes — agree on one state per name.
// [github.com/sysdesign-go/sysdesign/resilience/redisbreaker.Store] shares
// it through Redis; [NewMemoryBreakerStore] within one process (and on
// virtual time, for simulations).
//
// Implementations must be safe for concurrent use.
type BreakerStore interface {
	// Load returns the state at now, moving an open breaker whose timeout
	// has passed to half-open.
	Load(ctx context.Context, name string, now time.Time, r BreakerRules) (SharedState, error)
	// Acquire is Load plus admission: it reports whether a call may go now
	// (always when closed, never when open, while probe slots last when
	// half-open — taking one).
	Acquire(ctx context.Context, name string, now time.Time, r BreakerRules) (SharedState, bool, error)
	// Record adds the outcome of a call admitted under generation gen and
	// applies the transitions it causes, returning the new state.
	Record(ctx context.Context, name string, gen uint64, o Outcome, now time.Time, r BreakerRules) (SharedState, error)
}

// SharedBreakerOptions configure a [SharedBreaker]. Name is required; the
// zero value of every other field is a default.
type SharedBreakerOptions struct {
	// Name is the breaker's name in the store: every instance protecting
	// the same dependency uses the same name. It must not be empty or
	// contain braces.
	Name string
	// Rules are the trip and recovery rules; see [BreakerRules] for each
	// field's default.
	Rules BreakerRules
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
	// IsSuccessful and IsExcluded classify errors as for [BreakerOptions].
	IsSuccessful func(err error) bool
	IsExcluded   func(err error) bool
	// OnStateChange is called when this instance observes a transition,
	// never under a lock. Default nil.
	OnStateChange func(StateChange)
	// Now is the clock (virtual time in simulations). Default time.Now.
	Now func() time.Time
}

// SharedBreaker is a circuit breaker whose state is shared by every
// instance through a [BreakerStore]: when one instance's calls trip it,
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
// A SharedBreaker is safe for concurrent use.
type SharedBreaker[T any] struct {
	name    string
	store   BreakerStore
	rules   BreakerRules
	ttl     time.Duration
	timeout time.Duration
	slow    time.Duration
	isOK    func(error) bool
	isExcl  func(error) bool
	now     func() time.Time
	events  eventQueue[StateChange]

	mu       sync.Mutex
	cached   SharedState // guarded by mu
	cachedAt time.Time   // guarded by mu
	valid    bool        // guarded by mu

	calls, successes, failures, excluded, rejectedN, storeErrors counter
}

// SharedBreakerStats is a snapshot of one instance's view and counters.
type SharedBreakerStats struct {
	State      State
	Generation uint64
	// Calls ran fn; Rejected were short-circuited.
	Calls, Rejected               uint64
	Successes, Failures, Excluded uint64
	// StoreErrors counts store calls that failed (the breaker then fails
	// open).
	StoreErrors uint64
}

// NewSharedBreaker returns an instance of the shared breaker opts.Name in
// store.
func NewSharedBreaker[T any](store BreakerStore, opts SharedBreakerOptions) (*SharedBreaker[T], error) {
	if store == nil {
		return nil, configError("shared breaker needs a store")
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
	b := &SharedBreaker[T]{
		name: opts.Name, store: store, rules: r, ttl: opts.CacheTTL, timeout: opts.StoreTimeout,
		slow: opts.SlowCallThreshold, isOK: opts.IsSuccessful, isExcl: opts.IsExcluded, now: opts.Now,
	}
	b.events.hook = opts.OnStateChange
	return b, nil
}

func setDefault[V comparable](p *V, def V) {
	var zero V
	if *p == zero {
		*p = def
	}
}

// observe replaces the cached state, queueing a hook event if it changed.
func (b *SharedBreaker[T]) observe(st SharedState, at time.Time) {
	b.mu.Lock()
	if b.valid && st.Generation < b.cached.Generation {
		b.mu.Unlock() // an older answer raced a newer one
		return
	}
	prev, had := b.cached.State, b.valid
	b.cached, b.cachedAt, b.valid = st, at, true
	b.mu.Unlock()
	if (had && prev != st.State) || (!had && st.State != StateClosed) {
		b.events.push(StateChange{Name: b.name, From: prev, To: st.State})
	}
}

func (b *SharedBreaker[T]) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
}

// Allow asks whether a call may go now and returns the generation to
// record its outcome under. It is the first half of [SharedBreaker.Execute]
// for callers that cannot wrap the call in a function (simulations, async
// callbacks); every allowed call must be followed by
// [SharedBreaker.Done].
func (b *SharedBreaker[T]) Allow(ctx context.Context) (gen uint64, err error) {
	if b == nil || b.store == nil {
		return 0, notMade("shared breaker", "NewSharedBreaker")
	}
	now := b.now()
	b.mu.Lock()
	st, fresh := b.cached, b.valid && now.Sub(b.cachedAt) < b.ttl
	b.mu.Unlock()
	switch {
	case fresh && st.State == StateClosed:
		return st.Generation, nil
	case fresh && st.State == StateOpen && now.Before(st.OpenUntil):
		b.rejectedN.add()
		return 0, rejected("breaker", b.name, ErrOpen, nil)
	}
	sctx, cancel := b.storeCtx(ctx)
	st2, ok, err := b.store.Acquire(sctx, b.name, now, b.rules)
	cancel()
	if err != nil {
		// Fail open: the breaker protects the dependency, not the store.
		b.storeErrors.add()
		return st.Generation, nil
	}
	b.observe(st2, now)
	b.events.flush()
	if !ok {
		b.rejectedN.add()
		return 0, rejected("breaker", b.name, ErrOpen, nil)
	}
	return st2.Generation, nil
}

// Done records the outcome of a call allowed under gen that took took and
// ended with err (ctx is the caller's: an error after it ended is
// excluded). On a SharedBreaker NewSharedBreaker did not make, whose
// Allow allows nothing, it does nothing.
func (b *SharedBreaker[T]) Done(ctx context.Context, gen uint64, took time.Duration, err error) {
	if b == nil || b.store == nil {
		return
	}
	b.calls.add()
	o := OutcomeSuccess
	switch {
	case err != nil && (ctx.Err() != nil || (b.isExcl != nil && b.isExcl(err))):
		o = OutcomeExcluded
		b.excluded.add()
	case err != nil && (b.isOK == nil || !b.isOK(err)), b.slow > 0 && took > b.slow:
		o = OutcomeFailure
		b.failures.add()
	default:
		b.successes.add()
	}
	b.mu.Lock()
	cur := b.cached
	b.mu.Unlock()
	if o == OutcomeExcluded && cur.State != StateHalfOpen {
		return // nothing to give back
	}
	now := b.now()
	sctx, cancel := b.storeCtx(ctx)
	st, serr := b.store.Record(sctx, b.name, gen, o, now, b.rules)
	cancel()
	if serr != nil {
		b.storeErrors.add()
		return
	}
	b.observe(st, now)
	b.events.flush()
}

// Execute runs fn if the shared breaker lets the call through; a rejected
// call returns a [*PolicyError] wrapping [ErrOpen] without running fn.
func (b *SharedBreaker[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if b == nil || b.store == nil {
		return zero, notMade("shared breaker", "NewSharedBreaker")
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
// fails, or if NewSharedBreaker did not make b).
func (b *SharedBreaker[T]) State(ctx context.Context) State {
	if b.store == nil {
		return b.cached.State
	}
	now := b.now()
	sctx, cancel := b.storeCtx(ctx)
	st, err := b.store.Load(sctx, b.name, now, b.rules)
	cancel()
	if err != nil {
		b.storeErrors.add()
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.cached.State
	}
	b.observe(st, now)
	b.events.flush()
	return st.State
}

// Stats returns this instance's view and counters (without asking the
// store).
func (b *SharedBreaker[T]) Stats() SharedBreakerStats {
	b.mu.Lock()
	st := b.cached
	b.mu.Unlock()
	return SharedBreakerStats{
		State: st.State, Generation: st.Generation, Calls: b.calls.load(), Rejected: b.rejectedN.load(),
		Successes: b.successes.load(), Failures: b.failures.load(), Excluded: b.excluded.load(), StoreErrors: b.storeErrors.load(),
	}
}

var _ Policy[int] = (*SharedBreaker[int])(nil)

// MemoryBreakerStore is a [BreakerStore] in process memory: instances in
// one process share state through it, and simulations drive it on virtual
// time (it reads no clock of its own). It applies exactly the rules of the
// Redis store's scripts. It is safe for concurrent use; the zero value is
// an empty store ready to use.
type MemoryBreakerStore struct {
	mu       sync.Mutex
	breakers map[string]*memBreaker // guarded by mu
}

type memBreaker struct {
	st             SharedState
	probes, passes int
	req, fail      map[int64]int // per bucket number
}

// NewMemoryBreakerStore returns an empty store.
func NewMemoryBreakerStore() *MemoryBreakerStore {
	return &MemoryBreakerStore{breakers: map[string]*memBreaker{}}
}

// get returns name's breaker, applying the open → half-open transition.
// Requires s.mu.
func (s *MemoryBreakerStore) get(name string, now time.Time) *memBreaker {
	m := s.breakers[name]
	if m == nil {
		m = &memBreaker{req: map[int64]int{}, fail: map[int64]int{}}
		if s.breakers == nil {
			s.breakers = map[string]*memBreaker{}
		}
		s.breakers[name] = m
	}
	if m.st.State == StateOpen && !now.Before(m.st.OpenUntil) {
		m.st = SharedState{State: StateHalfOpen, Generation: m.st.Generation + 1, OpenUntil: now}
		m.probes, m.passes = 0, 0
	}
	return m
}

func (m *memBreaker) to(state State, now time.Time, r BreakerRules) {
	m.st = SharedState{State: state, Generation: m.st.Generation + 1}
	if state == StateOpen {
		m.st.OpenUntil = now.Add(r.Timeout)
	}
	m.probes, m.passes = 0, 0
	clear(m.req)
	clear(m.fail)
}

// Load implements [BreakerStore].
func (s *MemoryBreakerStore) Load(_ context.Context, name string, now time.Time, _ BreakerRules) (SharedState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(name, now).st, nil
}

// Acquire implements [BreakerStore].
func (s *MemoryBreakerStore) Acquire(_ context.Context, name string, now time.Time, r BreakerRules) (SharedState, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.get(name, now)
	switch m.st.State {
	case StateClosed:
		return m.st, true, nil
	case StateOpen:
		return m.st, false, nil
	}
	if m.probes >= r.HalfOpenRequests && !now.Before(m.st.OpenUntil) {
		m.probes = 0 // the previous probes' lease ran out
	}
	if m.probes >= r.HalfOpenRequests {
		return m.st, false, nil
	}
	m.probes++
	m.st.OpenUntil = now.Add(r.Timeout)
	return m.st, true, nil
}

// Record implements [BreakerStore].
func (s *MemoryBreakerStore) Record(_ context.Context, name string, gen uint64, o Outcome, now time.Time, r BreakerRules) (SharedState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.get(name, now)
	if gen != m.st.Generation {
		return m.st, nil
	}
	switch m.st.State {
	case StateClosed:
		if o == OutcomeExcluded {
			break
		}
		b := now.UnixNano() / int64(r.bucket())
		m.req[b]++
		if len(m.req) > 2*r.Buckets {
			for k := range m.req {
				if k <= b-int64(r.Buckets) {
					delete(m.req, k)
					delete(m.fail, k)
				}
			}
		}
		if o != OutcomeFailure {
			break
		}
		m.fail[b]++
		var req, fail int
		for i := b - int64(r.Buckets) + 1; i <= b; i++ {
			req += m.req[i]
			fail += m.fail[i]
		}
		if req >= r.MinRequests && float64(fail) >= r.FailureRate*float64(req) {
			m.to(StateOpen, now, r)
		}
	case StateHalfOpen:
		switch o {
		case OutcomeFailure:
			m.to(StateOpen, now, r)
		case OutcomeExcluded:
			m.probes = max(0, m.probes-1)
		default:
			m.passes++
			if m.passes >= r.HalfOpenRequests {
				m.to(StateClosed, now, r)
			}
		}
	}
	return m.st, nil
}

var _ BreakerStore = (*MemoryBreakerStore)(nil)

package sharedbreaker

import (
	"context"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/resilience"
)

// Snapshot is a shared breaker's state as its store holds it.
type Snapshot struct {
	State resilience.State
	// Generation increases on every transition; outcomes of calls admitted
	// under an older generation are ignored.
	Generation uint64
	// OpenUntil is when an open breaker goes half-open; while half-open, when
	// the current probes' lease ends and new probes may go.
	OpenUntil time.Time
}

// Outcome is a finished call's verdict, as recorded in a [Store].
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

// Rules are the trip and recovery rules a [Store] applies;
// every instance of one shared breaker must use the same rules. In
// [Options] the zero value of each field is its default.
type Rules struct {
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

func (r Rules) bucket() time.Duration { return r.Window / time.Duration(r.Buckets) }

// Store holds the state of shared circuit breakers: the transitions
// are applied atomically by the store, so any number of [Breaker]
// instances — goroutines or processes — agree on one state per name.
// [github.com/sysdesign-go/sysdesign/resilience/redisbreaker.Store] shares
// it through Redis; [NewMemoryStore] within one process (and on
// virtual time, for simulations).
//
// Implementations must be safe for concurrent use.
type Store interface {
	// Load returns the state at now, moving an open breaker whose timeout
	// has passed to half-open.
	Load(ctx context.Context, name string, now time.Time, r Rules) (Snapshot, error)
	// Acquire is Load plus admission: it reports whether a call may go now
	// (always when closed, never when open, while probe slots last when
	// half-open — taking one).
	Acquire(ctx context.Context, name string, now time.Time, r Rules) (Snapshot, bool, error)
	// Record adds the outcome of a call admitted under generation gen and
	// applies the transitions it causes, returning the new state.
	Record(ctx context.Context, name string, gen uint64, o Outcome, now time.Time, r Rules) (Snapshot, error)
}

// MemoryStore is a [Store] in process memory: instances in
// one process share state through it, and simulations drive it on virtual
// time (it reads no clock of its own). It applies exactly the rules of the
// Redis store's scripts. It is safe for concurrent use; the zero value is
// an empty store ready to use.
type MemoryStore struct {
	mu       sync.Mutex
	breakers map[string]*memBreaker // guarded by mu
}

type memBreaker struct {
	st             Snapshot
	probes, passes int
	req, fail      map[int64]int // per bucket number
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{breakers: map[string]*memBreaker{}}
}

// get returns name's breaker, applying the open → half-open transition.
// Requires s.mu.
func (s *MemoryStore) get(name string, now time.Time) *memBreaker {
	m := s.breakers[name]
	if m == nil {
		m = &memBreaker{req: map[int64]int{}, fail: map[int64]int{}}
		if s.breakers == nil {
			s.breakers = map[string]*memBreaker{}
		}
		s.breakers[name] = m
	}
	if m.st.State == resilience.StateOpen && !now.Before(m.st.OpenUntil) {
		m.st = Snapshot{State: resilience.StateHalfOpen, Generation: m.st.Generation + 1, OpenUntil: now}
		m.probes, m.passes = 0, 0
	}
	return m
}

func (m *memBreaker) to(state resilience.State, now time.Time, r Rules) {
	m.st = Snapshot{State: state, Generation: m.st.Generation + 1}
	if state == resilience.StateOpen {
		m.st.OpenUntil = now.Add(r.Timeout)
	}
	m.probes, m.passes = 0, 0
	clear(m.req)
	clear(m.fail)
}

// Load implements [Store].
func (s *MemoryStore) Load(_ context.Context, name string, now time.Time, _ Rules) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(name, now).st, nil
}

// Acquire implements [Store].
func (s *MemoryStore) Acquire(_ context.Context, name string, now time.Time, r Rules) (Snapshot, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.get(name, now)
	switch m.st.State {
	case resilience.StateClosed:
		return m.st, true, nil
	case resilience.StateOpen:
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

// Record implements [Store].
func (s *MemoryStore) Record(_ context.Context, name string, gen uint64, o Outcome, now time.Time, r Rules) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.get(name, now)
	if gen != m.st.Generation {
		return m.st, nil
	}
	switch m.st.State {
	case resilience.StateClosed:
		if o == OutcomeExcluded {
			break
		}
		b := now.UnixNano() / int64(r.bucket())
		m.req[b]++
		// Pruning only bounds memory: the sum below reads the window's
		// buckets alone, so how many old ones linger is not seen.
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
			m.to(resilience.StateOpen, now, r)
		}
	case resilience.StateHalfOpen:
		switch o {
		case OutcomeFailure:
			m.to(resilience.StateOpen, now, r)
		case OutcomeExcluded:
			m.probes = max(0, m.probes-1)
		default:
			m.passes++
			if m.passes >= r.HalfOpenRequests {
				m.to(resilience.StateClosed, now, r)
			}
		}
	}
	return m.st, nil
}

var _ Store = (*MemoryStore)(nil)

package resilience

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// StaleSource is where [Degrader] finds a value to serve when the
// dependency fails: anything that can return the last known value for a
// key, even if it has expired — a cache that keeps expired entries, a
// replica, a file. A cache satisfies it with a method of this signature.
type StaleSource[V any] interface {
	// GetStale returns the last value stored for key and when it was
	// stored, ignoring expiry; ok is false if there is none.
	GetStale(ctx context.Context, key string) (v V, storedAt time.Time, ok bool)
}

// StaleStore is a StaleSource that can also be written, so the degrader
// refreshes it on every success.
type StaleStore[V any] interface {
	StaleSource[V]
	PutStale(ctx context.Context, key string, v V, at time.Time)
}

// LastGood is an in-memory [StaleStore] that keeps the last successful
// value per key, up to a maximum number of keys (the least recently
// stored is dropped first). It is safe for concurrent use. Make one with
// [NewLastGood]: the zero LastGood has room for no key and keeps nothing.
type LastGood[V any] struct {
	max int

	mu    sync.Mutex
	items map[string]lastGoodItem[V] // guarded by mu
	order []string                   // guarded by mu: keys in insertion order
}

type lastGoodItem[V any] struct {
	v  V
	at time.Time
}

// NewLastGood returns a store of at most maxKeys (≥ 1) keys.
func NewLastGood[V any](maxKeys int) (*LastGood[V], error) {
	if maxKeys < 1 {
		return nil, configError("LastGood needs maxKeys >= 1, got %d", maxKeys)
	}
	return &LastGood[V]{max: maxKeys, items: map[string]lastGoodItem[V]{}}, nil
}

// GetStale returns the value stored for key.
func (l *LastGood[V]) GetStale(_ context.Context, key string) (V, time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it, ok := l.items[key]
	return it.v, it.at, ok
}

// PutStale stores v for key.
func (l *LastGood[V]) PutStale(_ context.Context, key string, v V, at time.Time) {
	if l.max < 1 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.items[key]; !ok {
		l.order = append(l.order, key)
	}
	l.items[key] = lastGoodItem[V]{v: v, at: at}
	for len(l.items) > l.max && len(l.order) > 0 {
		delete(l.items, l.order[0])
		l.order = l.order[1:]
	}
}

// DegraderOptions configure a [Degrader].
type DegraderOptions struct {
	// MaxStaleness is the oldest value the degrader serves. Default 0: any.
	MaxStaleness time.Duration
	// On reports whether an error should be answered with a stale value.
	// Default: every error except the caller's context ending.
	On func(err error) bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Degrader serves a stale value when the dependency fails (the guide,
// "Graceful Degradation: Cached Responses: Serve stale but available
// data"): on success it stores the fresh value (if the source is a
// [StaleStore]), on failure it answers from the source and reports the
// value as stale.
//
// Pros: users keep reading during an outage. Cons: they read old data —
// bound it with MaxStaleness, and never use it for data that must be
// current (balances, stock).
//
// A Degrader is safe for concurrent use.
type Degrader[T any] struct {
	src   StaleSource[T]
	store StaleStore[T]
	o     DegraderOptions

	calls, served, missed counter
}

// DegraderStats counts calls, stale answers, and failures with no usable
// stale value.
type DegraderStats struct{ Calls, ServedStale, NoStale uint64 }

// NewDegrader returns a degrader over src.
func NewDegrader[T any](src StaleSource[T], opts DegraderOptions) (*Degrader[T], error) {
	if src == nil {
		return nil, configError("degrader needs a stale source")
	}
	if opts.MaxStaleness < 0 {
		return nil, configError("degrader MaxStaleness must not be negative, got %v", opts.MaxStaleness)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Degrader[T]{src: src, o: opts}
	d.store, _ = src.(StaleStore[T])
	return d, nil
}

// Execute calls fn for key; on an accepted failure it returns the stale
// value, stale = true and a nil error, or fn's error if there is no usable
// stale value.
func (d *Degrader[T]) Execute(ctx context.Context, key string, fn func(context.Context) (T, error)) (v T, stale bool, err error) {
	if d == nil || d.src == nil {
		return v, false, notMade("degrader", "NewDegrader")
	}
	if fn == nil {
		return v, false, configError("degrader: nil function")
	}
	d.calls.add()
	v, err = fn(ctx)
	if err == nil {
		if d.store != nil {
			d.store.PutStale(ctx, key, v, d.o.Now())
		}
		return v, false, nil
	}
	if ctx.Err() != nil || (d.o.On != nil && !d.o.On(err)) {
		return v, false, err
	}
	sv, at, ok := d.src.GetStale(ctx, key)
	if !ok || (d.o.MaxStaleness > 0 && d.o.Now().Sub(at) > d.o.MaxStaleness) {
		d.missed.add()
		return v, false, err
	}
	d.served.add()
	return sv, true, nil
}

// Stats returns the degrader's counters.
func (d *Degrader[T]) Stats() DegraderStats {
	return DegraderStats{Calls: d.calls.load(), ServedStale: d.served.load(), NoStale: d.missed.load()}
}

// Switch is a feature switch (the guide: "Feature Flags: Disable
// non-critical features"): work behind it runs only while it is on. A
// non-critical switch also goes off while its [Switches] set is degraded,
// so one call sheds all optional work under load. A Switch is safe for
// concurrent use and is a [Guard]: a call through a switch that is off
// fails with a [*PolicyError] wrapping [ErrDisabled] without running.
type Switch struct {
	name     string
	critical bool
	set      *Switches
	on       atomic.Bool
	skipped  counter
}

// Name returns the switch's name.
func (s *Switch) Name() string { return s.name }

// Set turns the switch on or off by hand.
func (s *Switch) Set(on bool) { s.on.Store(on) }

// Enabled reports whether work behind the switch should run now.
func (s *Switch) Enabled() bool {
	return s.on.Load() && (s.critical || !s.set.degraded.Load())
}

// Enter lets the call through if the switch is enabled.
func (s *Switch) Enter(ctx context.Context) (Permit, error) {
	if !s.Enabled() {
		s.skipped.add()
		return Permit{}, rejected("switch", s.name, ErrDisabled, nil)
	}
	return Permit{Ctx: ctx}, nil
}

// Exit does nothing.
func (s *Switch) Exit(Permit, error) {}

// Skipped counts calls refused because the switch was off.
func (s *Switch) Skipped() uint64 { return s.skipped.load() }

// Switches is a set of named feature switches with one degraded mode that
// turns every non-critical switch off. It is safe for concurrent use; the
// zero value is an empty set, ready to use.
type Switches struct {
	degraded atomic.Bool
	mu       sync.Mutex
	byName   map[string]*Switch // guarded by mu
}

// Register adds a switch, initially on; registering a name twice is an
// error.
func (s *Switches) Register(name string, critical bool) (*Switch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byName[name]; ok {
		return nil, configError("switch %q registered twice", name)
	}
	if s.byName == nil {
		s.byName = map[string]*Switch{}
	}
	sw := &Switch{name: name, critical: critical, set: s}
	sw.on.Store(true)
	s.byName[name] = sw
	return sw, nil
}

// Get returns the switch named name, or nil.
func (s *Switches) Get(name string) *Switch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byName[name]
}

// SetDegraded turns degraded mode on (every non-critical switch off) or
// off. Wire it to a load signal — a [LoadShedder]'s shed count, CPU — to
// shed optional work before shedding requests.
func (s *Switches) SetDegraded(on bool) { s.degraded.Store(on) }

// Degraded reports whether degraded mode is on.
func (s *Switches) Degraded() bool { return s.degraded.Load() }

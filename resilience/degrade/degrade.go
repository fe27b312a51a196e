package degrade

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/resilience"
)

// ErrDisabled means a feature switch is off (see [Switches]).
var ErrDisabled = errors.New("resilience: feature disabled")

// StaleSource is where a [Degrader] finds a value to serve when the
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

// Options configure a [Degrader]. The zero value keeps the last good
// value of up to 10,000 keys in memory and serves it however old it is.
type Options[T any] struct {
	// Source is where stale values come from; if it is a [StaleStore],
	// every success refreshes it. Default nil: the degrader keeps the last
	// good value of each key in memory, up to MaxKeys keys.
	Source StaleSource[T]
	// MaxKeys bounds the in-memory store of a degrader without a Source:
	// past it, the least recently stored key is dropped. Default 10,000;
	// it must not be negative, and it must be 0 when Source is set.
	MaxKeys int
	// MaxStaleness is the oldest value the degrader serves. Default 0: any.
	MaxStaleness time.Duration
	// On reports whether an error should be answered with a stale value.
	// Default: every error except the caller's context ending.
	On func(err error) bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// lastGood is the in-memory [StaleStore] of a Degrader without a Source:
// the last successful value per key, up to max keys (the least recently
// stored is dropped first).
type lastGood[V any] struct {
	max int

	mu    sync.Mutex
	items map[string]*list.Element // guarded by mu: values are *lastGoodItem[V]
	order list.List                // guarded by mu: least recently stored first
}

type lastGoodItem[V any] struct {
	key string
	v   V
	at  time.Time
}

// GetStale returns the value stored for key.
func (l *lastGood[V]) GetStale(_ context.Context, key string) (V, time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.items[key]
	if !ok {
		var zero V
		return zero, time.Time{}, false
	}
	it := el.Value.(*lastGoodItem[V])
	return it.v, it.at, true
}

// PutStale stores v for key, as the most recently stored key.
func (l *lastGood[V]) PutStale(_ context.Context, key string, v V, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.items[key]; ok {
		it := el.Value.(*lastGoodItem[V])
		it.v, it.at = v, at
		l.order.MoveToBack(el)
		return
	}
	l.items[key] = l.order.PushBack(&lastGoodItem[V]{key: key, v: v, at: at})
	if l.order.Len() > l.max {
		oldest := l.order.Remove(l.order.Front()).(*lastGoodItem[V])
		delete(l.items, oldest.key)
	}
}

// Degrader serves a stale value when the dependency fails (the guide,
// "Graceful Degradation: Cached Responses: Serve stale but available
// data"): on success it stores the fresh value (in its own memory, or in
// a Source that is a [StaleStore]), on failure it answers from there and
// reports the value as stale.
//
// Pros: users keep reading during an outage. Cons: they read old data —
// bound it with MaxStaleness, and never use it for data that must be
// current (balances, stock).
//
// A Degrader is safe for concurrent use.
type Degrader[T any] struct {
	src          StaleSource[T]
	store        StaleStore[T]
	maxStaleness time.Duration
	on           func(error) bool
	now          func() time.Time

	calls, served, missed atomic.Uint64
}

// Stats counts calls, stale answers, and failures with no usable stale
// value.
type Stats struct{ Calls, ServedStale, NoStale uint64 }

// New returns a degrader configured by opts.
func New[T any](opts Options[T]) (*Degrader[T], error) {
	switch {
	case opts.MaxKeys < 0:
		return nil, configError("degrader MaxKeys must not be negative, got %d", opts.MaxKeys)
	case opts.MaxKeys > 0 && opts.Source != nil:
		return nil, configError("degrader MaxKeys %d bounds the in-memory store, which a Source replaces", opts.MaxKeys)
	case opts.MaxStaleness < 0:
		return nil, configError("degrader MaxStaleness must not be negative, got %v", opts.MaxStaleness)
	}
	if opts.Source == nil {
		if opts.MaxKeys == 0 {
			opts.MaxKeys = 10_000
		}
		opts.Source = &lastGood[T]{max: opts.MaxKeys, items: map[string]*list.Element{}}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Degrader[T]{src: opts.Source, maxStaleness: opts.MaxStaleness, on: opts.On, now: opts.Now}
	d.store, _ = opts.Source.(StaleStore[T])
	return d, nil
}

// Execute calls fn for key; on an accepted failure it returns the stale
// value, stale = true and a nil error, or fn's error if there is no usable
// stale value.
func (d *Degrader[T]) Execute(ctx context.Context, key string, fn func(context.Context) (T, error)) (v T, stale bool, err error) {
	if d == nil || d.src == nil {
		return v, false, configError("degrader not made by degrade.New")
	}
	if fn == nil {
		return v, false, configError("degrader: nil function")
	}
	d.calls.Add(1)
	v, err = fn(ctx)
	if err == nil {
		if d.store != nil {
			d.store.PutStale(ctx, key, v, d.now())
		}
		return v, false, nil
	}
	if ctx.Err() != nil || (d.on != nil && !d.on(err)) {
		return v, false, err
	}
	sv, at, ok := d.src.GetStale(ctx, key)
	if !ok || (d.maxStaleness > 0 && d.now().Sub(at) > d.maxStaleness) {
		d.missed.Add(1)
		return v, false, err
	}
	d.served.Add(1)
	return sv, true, nil
}

// Stats returns the degrader's counters.
func (d *Degrader[T]) Stats() Stats {
	return Stats{Calls: d.calls.Load(), ServedStale: d.served.Load(), NoStale: d.missed.Load()}
}

// Switch is a feature switch (the guide: "Feature Flags: Disable
// non-critical features"): work behind it runs only while it is on. A
// non-critical switch also goes off while its [Switches] set is degraded,
// so one call sheds all optional work under load. A Switch is safe for
// concurrent use and is a [resilience.Guard]: a call through a switch that is off
// fails with a [*resilience.PolicyError] wrapping [ErrDisabled] without running.
type Switch struct {
	name     string
	critical bool
	set      *Switches
	on       atomic.Bool
	skipped  atomic.Uint64
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
func (s *Switch) Enter(ctx context.Context) (resilience.Permit, error) {
	if !s.Enabled() {
		s.skipped.Add(1)
		return resilience.Permit{}, &resilience.PolicyError{Policy: "switch", Name: s.name, Kind: ErrDisabled}
	}
	return resilience.Permit{Ctx: ctx}, nil
}

// Exit does nothing.
func (s *Switch) Exit(resilience.Permit, error) {}

// Skipped counts calls refused because the switch was off.
func (s *Switch) Skipped() uint64 { return s.skipped.Load() }

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
// off. Wire it to a load signal — a resilience.LoadShedder's shed count,
// CPU — to
// shed optional work before shedding requests.
func (s *Switches) SetDegraded(on bool) { s.degraded.Store(on) }

// Degraded reports whether degraded mode is on.
func (s *Switches) Degraded() bool { return s.degraded.Load() }

// configError returns an error wrapping resilience.ErrInvalidConfig that
// names the bad value.
func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{resilience.ErrInvalidConfig}, args...)...)
}

var _ resilience.Guard = (*Switch)(nil)

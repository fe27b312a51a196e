package cache

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Refresh-ahead — reload entries before they expire.
//
// The guide: "Refresh-Ahead: Proactive cache updates. Flow: Update cache
// before expiration. Pros: No cache misses, consistent performance. Cons:
// Higher resource usage, complexity. Use Cases: Critical performance
// requirements."
//
// [RefreshAhead] serves a cached value and, when the value is old enough,
// reloads it in the background while callers keep getting the current
// value; a key read steadily therefore never misses. "Old enough" is
// either a fixed fraction of the TTL ([RefreshAheadOptions.RefreshAfter])
// or the probabilistic XFetch rule of Vattani, Chierichetti and Lowenstein
// ("Optimal Probabilistic Cache Stampede Prevention", VLDB 2015): refresh
// when now − δ·β·ln(U) ≥ expiry, with δ the time a load takes, β ≥ 0 a
// knob and U uniform in (0, 1] — early refreshes become likelier as expiry
// nears, and one caller, not all, usually triggers it. Only one reload per
// key runs at a time. The cost is the guide's "higher resource usage":
// keys that are read once near expiry are reloaded for nothing.

// RefreshAheadOptions configures [RefreshAhead]. TTL is required; the rest
// defaults to refreshing after 80% of the TTL.
type RefreshAheadOptions struct {
	// TTL is the lifetime of loaded values. Required.
	TTL time.Duration
	// RefreshAfter is the fraction of TTL after which a read triggers a
	// background reload, in (0, 1). Default 0: 0.8. Ignored when Beta > 0.
	RefreshAfter float64
	// Beta > 0 selects XFetch instead of a fixed fraction; 1 is the
	// paper's recommended value, larger refreshes earlier. Default 0.
	Beta float64
	// LoadTimeout bounds each background reload. Default 0: the TTL.
	LoadTimeout time.Duration
	// OnError is called with background reload errors; the old value stays
	// until it expires. Default nil.
	OnError func(key any, err error)
	// Now returns the current time. Default nil: time.Now.
	Now func() time.Time
	// Rand returns U in [0, 1) for XFetch; it is called from concurrent
	// Gets, so it must be safe for concurrent use. Default nil: math/rand/v2.
	Rand func() float64
}

// RefreshAhead is a read-through cache that reloads values before they
// expire. It is safe for concurrent use. Create it with [NewRefreshAhead];
// [RefreshAhead.Close] cancels background reloads and waits for them (a
// [Loader] that ignores its context holds Close until it returns or Close's
// context ends). A zero RefreshAhead is not usable: Get returns an error
// wrapping [ErrInvalidConfig] at once, and Close does nothing.
type RefreshAhead[K comparable, V any] struct {
	store  Store[K, V]
	loader Loader[K, V]
	opts   RefreshAheadOptions
	now    func() time.Time
	rnd    func() float64
	flight flight[K, V]

	mu         sync.Mutex
	refreshing map[K]bool // guarded by mu
	closed     bool       // guarded by mu
	wg         sync.WaitGroup
	stopped    chan struct{} // closed when the reloads have ended after Close
	ctx        context.Context
	cancel     context.CancelFunc

	delta atomic.Int64 // moving average of load time, ns
	stats struct{ hits, misses, loads, refreshes, errors atomic.Uint64 }
}

// RefreshAheadStats is a snapshot of a [RefreshAhead]'s counters.
type RefreshAheadStats struct {
	Hits, Misses uint64
	Loads        uint64 // synchronous loads on a miss
	Refreshes    uint64 // background reloads started
	LoadErrors   uint64 // failed loads and reloads
}

// HitRatio returns Hits / (Hits + Misses), 0 before any lookup.
func (s RefreshAheadStats) HitRatio() float64 { return hitRatio(s.Hits, s.Misses) }

// NewRefreshAhead returns a refresh-ahead cache over store and loader.
func NewRefreshAhead[K comparable, V any](store Store[K, V], loader Loader[K, V], opts RefreshAheadOptions) (*RefreshAhead[K, V], error) {
	switch {
	case store == nil:
		return nil, invalid("nil store")
	case loader == nil:
		return nil, invalid("nil loader")
	case opts.TTL <= 0:
		return nil, invalid("refresh-ahead TTL must be positive, got %v", opts.TTL)
	case !(opts.RefreshAfter >= 0 && opts.RefreshAfter < 1):
		return nil, invalid("RefreshAfter must be in (0, 1), got %v", opts.RefreshAfter)
	case !(opts.Beta >= 0) || math.IsInf(opts.Beta, 0):
		return nil, invalid("Beta must be a non-negative number, got %v", opts.Beta)
	case opts.LoadTimeout < 0:
		return nil, invalid("negative LoadTimeout %v", opts.LoadTimeout)
	}
	if opts.RefreshAfter == 0 {
		opts.RefreshAfter = 0.8
	}
	if opts.LoadTimeout == 0 {
		opts.LoadTimeout = opts.TTL
	}
	r := &RefreshAhead[K, V]{store: store, loader: loader, opts: opts, now: nowFunc(opts.Now), rnd: opts.Rand, refreshing: map[K]bool{}, stopped: make(chan struct{})}
	if r.rnd == nil {
		r.rnd = rand.Float64
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Get returns key's value. A cached value is returned at once, and starts a
// background reload when it is due; a missing one is loaded (concurrent
// misses share one load).
func (r *RefreshAhead[K, V]) Get(ctx context.Context, key K) (V, error) {
	if r.store == nil {
		var zero V
		return zero, errZero("RefreshAhead", "NewRefreshAhead")
	}
	v, ttl, ok, err := r.store.Get(ctx, key)
	if err == nil && ok {
		r.stats.hits.Add(1)
		if r.due(ttl) {
			r.refresh(key)
		}
		return v, nil
	}
	r.stats.misses.Add(1)
	v, _, err = r.flight.do(ctx, key, func() (V, error) {
		r.stats.loads.Add(1)
		return r.load(ctx, key)
	})
	return v, err
}

// due reports whether a value with ttl left should be reloaded now.
func (r *RefreshAhead[K, V]) due(ttl time.Duration) bool {
	if ttl <= 0 {
		return false // no expiry known
	}
	if r.opts.Beta > 0 {
		// XFetch: now − δ·β·ln(U) ≥ expiry ⇔ −δ·β·ln(U) ≥ ttl.
		u := 1 - r.rnd()                                                        // (0, 1]
		return -float64(r.delta.Load())*r.opts.Beta*math.Log(u) >= float64(ttl) // equality has probability zero: > agrees
	}
	return float64(ttl) <= float64(r.opts.TTL)*(1-r.opts.RefreshAfter) // a float product: equality is chance, < agrees
}

func (r *RefreshAhead[K, V]) load(ctx context.Context, key K) (V, error) {
	start := r.now()
	v, err := r.loader.Load(ctx, key)
	if err != nil {
		r.stats.errors.Add(1)
		return v, err
	}
	d := int64(r.now().Sub(start))
	if old := r.delta.Load(); old != 0 {
		d = (old*7 + d) / 8
	}
	r.delta.Store(max(d, 1))
	if err := r.store.Set(ctx, key, v, r.opts.TTL); err != nil {
		r.stats.errors.Add(1)
		r.report(key, err)
	}
	return v, nil
}

// refresh starts one background reload of key unless one is running.
func (r *RefreshAhead[K, V]) refresh(key K) {
	r.mu.Lock()
	if r.closed || r.refreshing[key] {
		r.mu.Unlock()
		return
	}
	r.refreshing[key] = true
	r.wg.Add(1)
	r.mu.Unlock()
	r.stats.refreshes.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(r.ctx, r.opts.LoadTimeout)
		_, err := r.load(ctx, key)
		cancel()
		r.mu.Lock()
		delete(r.refreshing, key)
		r.mu.Unlock()
		if err != nil {
			r.report(key, err)
		}
	}()
}

func (r *RefreshAhead[K, V]) report(key K, err error) {
	if r.opts.OnError != nil {
		r.opts.OnError(key, err)
	}
}

// Stats returns the cache's counters.
func (r *RefreshAhead[K, V]) Stats() RefreshAheadStats {
	return RefreshAheadStats{
		Hits: r.stats.hits.Load(), Misses: r.stats.misses.Load(), Loads: r.stats.loads.Load(),
		Refreshes: r.stats.refreshes.Load(), LoadErrors: r.stats.errors.Load(),
	}
}

// Close cancels background reloads and waits for them to end, or for ctx
// to be done: it then returns an error wrapping ctx's error that says how
// many reloads were still running (a [Loader] that ignores its context
// keeps running until it returns). Get still works afterwards but starts
// no reloads. Calling Close again waits, under its own ctx, for the same
// reloads.
func (r *RefreshAhead[K, V]) Close(ctx context.Context) error {
	if r.cancel == nil {
		return nil // a zero RefreshAhead started nothing
	}
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		r.cancel()
		go func() { r.wg.Wait(); close(r.stopped) }()
	}
	r.mu.Unlock()
	select {
	case <-r.stopped:
		return nil
	case <-ctx.Done():
		r.mu.Lock()
		n := len(r.refreshing)
		r.mu.Unlock()
		return fmt.Errorf("cache: refresh-ahead closed with %d reloads still running: %w", n, ctx.Err())
	}
}

package cache

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Cache-aside — the application manages the cache.
//
// The guide: "Cache-Aside: Application manages cache. Flow: Check cache →
// miss → fetch from DB → update cache. Pros: Simple, flexible cache
// management. Cons: Cache inconsistency, cache stampede. Use Cases:
// Read-heavy applications."
//
// [Aside] removes the stampede: concurrent misses for one key cause one
// load, the other callers wait for its result. It caches "not found" for
// [AsideOptions.NegativeTTL] so a flood of requests for a missing key does
// not reach the source, and spreads expiry with [AsideOptions.Jitter] so
// keys loaded together do not all expire together. Inconsistency remains
// the pattern's price: after the source changes, readers see the old value
// until it expires or is invalidated (rediscache.MultiLevel does that
// across processes).

// AsideOptions configures [Aside] and [ReadThrough]. The zero value caches
// loaded values with the store's default TTL, caches no negative results,
// adds no jitter and protects against stampedes.
type AsideOptions struct {
	// TTL is the lifetime of loaded values. Default 0: the store's default.
	TTL time.Duration
	// Jitter shortens each TTL by a random fraction in [0, Jitter), so keys
	// loaded at the same moment expire at different moments. Must be in
	// [0, 1). Default 0: no jitter.
	Jitter float64
	// NegativeTTL is how long a "not found" ([ErrNotFound] from the loader)
	// is remembered. Default 0: not remembered.
	NegativeTTL time.Duration
	// NegativeCapacity bounds the number of remembered "not found" keys.
	// Default 0: 10,000.
	NegativeCapacity int
	// AllowStampede turns off per-key load de-duplication, so that every
	// concurrent miss calls the loader. It exists to measure the stampede
	// (see the lab); leave it false in production. Default false.
	AllowStampede bool
	// OnError is called with errors of the cache store (a failed Get or
	// Set); the value is still loaded from or returned to the caller.
	// Default nil.
	OnError func(err error)
	// Now returns the current time, for negative caching. Default nil:
	// time.Now.
	Now func() time.Time
}

// Aside is a cache-aside reader over any [Store]. It is safe for concurrent
// use. Create it with [NewAside]. A zero Aside is not usable: Get returns
// an error wrapping [ErrInvalidConfig] at once.
type Aside[K comparable, V any] struct {
	store  Store[K, V]
	opts   AsideOptions
	neg    *Memory[K, struct{}]
	flight flight[K, V]
	stats  asideCounters
}

type asideCounters struct {
	hits, misses, negHits, loads, loadErrors, shared, storeErrors atomic.Uint64
}

// AsideStats is a snapshot of an [Aside]'s counters.
type AsideStats struct {
	Hits   uint64 // values served from the store
	Misses uint64 // lookups the store could not serve
	// NegativeHits counts misses answered by a remembered "not found".
	NegativeHits uint64
	Loads        uint64 // calls of the loader
	LoadErrors   uint64 // loader calls that failed (not-found included)
	// Shared counts misses that waited for another caller's load instead
	// of loading: the stampede the de-duplication absorbed.
	Shared      uint64
	StoreErrors uint64 // failed store lookups or saves
}

// HitRatio returns Hits / (Hits + Misses), 0 before any lookup.
func (s AsideStats) HitRatio() float64 { return hitRatio(s.Hits, s.Misses) }

// NewAside returns a cache-aside reader caching into store.
func NewAside[K comparable, V any](store Store[K, V], opts AsideOptions) (*Aside[K, V], error) {
	if store == nil {
		return nil, invalid("nil store")
	}
	if opts.TTL < 0 || opts.NegativeTTL < 0 {
		return nil, invalid("negative TTL (TTL %v, NegativeTTL %v)", opts.TTL, opts.NegativeTTL)
	}
	if !(opts.Jitter >= 0 && opts.Jitter < 1) {
		return nil, invalid("jitter must be in [0, 1), got %v", opts.Jitter)
	}
	if opts.NegativeCapacity < 0 {
		return nil, invalid("negative NegativeCapacity %d", opts.NegativeCapacity)
	}
	a := &Aside[K, V]{store: store, opts: opts}
	if opts.NegativeTTL > 0 {
		n := opts.NegativeCapacity
		if n == 0 {
			n = 10_000
		}
		neg, err := NewMemory(n, MemoryOptions[K, struct{}]{Policy: LRU, DefaultTTL: opts.NegativeTTL, Now: opts.Now})
		if err != nil {
			return nil, err
		}
		a.neg = neg
	}
	return a, nil
}

// Get returns the cached value of key, or calls load, caches its result and
// returns it. Concurrent misses for one key share one call of load; the
// caller that makes it reads the store once more first if a load ended
// since its own read, so a miss that races a load just ending does not
// load again. A load error is returned and nothing is cached, except that
// an error wrapping [ErrNotFound] is remembered for NegativeTTL.
func (a *Aside[K, V]) Get(ctx context.Context, key K, load func(ctx context.Context, key K) (V, error)) (V, error) {
	var zero V
	if a == nil || a.store == nil {
		return zero, errZero("Aside", "NewAside")
	}
	if load == nil {
		return zero, invalid("nil loader for key %v", key)
	}
	ended := a.flight.ended.Load() // before the read: see the flight below
	v, _, ok, err := a.store.Get(ctx, key)
	if err != nil {
		a.storeError(err)
	}
	if ok {
		a.stats.hits.Add(1)
		return v, nil
	}
	a.stats.misses.Add(1)
	if a.neg != nil {
		if _, ok := a.neg.Get(key); ok {
			a.stats.negHits.Add(1)
			return zero, wrapf(ErrNotFound, "cache: key %v not found (cached)", key)
		}
	}
	if a.opts.AllowStampede {
		return a.load(ctx, key, load)
	}
	v, shared, err := a.flight.do(ctx, key, func() (V, error) {
		// A flight that ended between the read above and this one may
		// have filled the store: then look again before loading a second
		// time. (Without one, as for a lone request, nothing is read
		// twice.) An error here was counted by the first read; the load
		// goes ahead.
		if a.flight.ended.Load() != ended {
			if v, _, ok, err := a.store.Get(ctx, key); err == nil && ok {
				return v, nil
			}
		}
		return a.load(ctx, key, load)
	})
	if shared {
		a.stats.shared.Add(1)
	}
	return v, err
}

func (a *Aside[K, V]) load(ctx context.Context, key K, load func(ctx context.Context, key K) (V, error)) (V, error) {
	a.stats.loads.Add(1)
	v, err := load(ctx, key)
	if err != nil {
		a.stats.loadErrors.Add(1)
		if a.neg != nil && errors.Is(err, ErrNotFound) {
			_ = a.neg.Set(key, struct{}{})
		}
		return v, err
	}
	if err := a.store.Set(ctx, key, v, a.ttl()); err != nil {
		a.storeError(err)
	}
	return v, nil
}

// ttl returns the TTL for a new value, shortened by jitter.
func (a *Aside[K, V]) ttl() time.Duration {
	if a.opts.Jitter == 0 || a.opts.TTL == 0 {
		return a.opts.TTL
	}
	return max(time.Duration(float64(a.opts.TTL)*(1-a.opts.Jitter*rand.Float64())), 1)
}

func (a *Aside[K, V]) storeError(err error) {
	a.stats.storeErrors.Add(1)
	if a.opts.OnError != nil {
		a.opts.OnError(err)
	}
}

// Forget drops key's remembered "not found", so the next Get loads it.
// Call it after creating the key in the source.
func (a *Aside[K, V]) Forget(key K) {
	if a != nil && a.neg != nil {
		a.neg.Delete(key)
	}
}

// Stats returns the reader's counters.
func (a *Aside[K, V]) Stats() AsideStats {
	if a == nil {
		return AsideStats{}
	}
	return AsideStats{
		Hits: a.stats.hits.Load(), Misses: a.stats.misses.Load(), NegativeHits: a.stats.negHits.Load(),
		Loads: a.stats.loads.Load(), LoadErrors: a.stats.loadErrors.Load(), Shared: a.stats.shared.Load(),
		StoreErrors: a.stats.storeErrors.Load(),
	}
}

// Read-through — the cache loads from the source itself.
//
// The guide lists read-through beside cache-aside: the caller asks only
// the cache, which knows how to load a missing value. [ReadThrough] is an
// [Aside] bound to one [Loader], so call sites cannot forget to fill the
// cache or load differently; it has the same stampede protection, negative
// caching and jitter.

// ReadThrough is a cache that loads misses from its [Loader]. It is safe
// for concurrent use. Create it with [NewReadThrough]. A zero ReadThrough
// is not usable: Get returns an error wrapping [ErrInvalidConfig] at once.
type ReadThrough[K comparable, V any] struct {
	*Aside[K, V]
	loader Loader[K, V]
}

// NewReadThrough returns a read-through cache over store and loader.
func NewReadThrough[K comparable, V any](store Store[K, V], loader Loader[K, V], opts AsideOptions) (*ReadThrough[K, V], error) {
	if loader == nil {
		return nil, invalid("nil loader")
	}
	a, err := NewAside(store, opts)
	if err != nil {
		return nil, err
	}
	return &ReadThrough[K, V]{Aside: a, loader: loader}, nil
}

// Get returns key's value from the cache, loading it on a miss.
func (r *ReadThrough[K, V]) Get(ctx context.Context, key K) (V, error) {
	if r.loader == nil {
		var zero V
		return zero, errZero("ReadThrough", "NewReadThrough")
	}
	return r.Aside.Get(ctx, key, r.loader.Load)
}

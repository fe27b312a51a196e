package ratelimit

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// KeyedLimiter is a limit applied separately to each key — per client IP,
// per user, per API key, per route. [Keyed] implements it in memory for one
// process; redislimit.Limiter implements it across every process sharing a
// Redis. The HTTP [Middleware] takes either.
type KeyedLimiter interface {
	// AllowN reports whether n events may happen now for key, and
	// consumes them if so. It returns an error for an empty key, a bad
	// n, or a backend failure the limiter's policy does not absorb.
	AllowN(ctx context.Context, key string, n int) (Decision, error)
}

// EvictReason says why a [Keyed] dropped a key's limiter.
type EvictReason int

// The reasons a key is dropped.
const (
	// EvictIdle: the key was unused for IdleTimeout.
	EvictIdle EvictReason = iota
	// EvictCapacity: MaxKeys was reached and the key was among the least
	// recently used.
	EvictCapacity
)

// String returns "idle" or "capacity".
func (r EvictReason) String() string {
	if r == EvictIdle {
		return "idle"
	}
	return "capacity"
}

// KeyedOptions configure a [Keyed]. The zero value is ready to use.
type KeyedOptions struct {
	// MaxKeys bounds the number of keys tracked at once. When it is
	// reached, a new key evicts one of the least recently used keys
	// (the least recently used of 8 sampled, as Redis's allkeys-lru does), which forgets that key's
	// state: under a flood of distinct keys memory stays bounded, at the
	// price of letting an evicted key start afresh. Default 100,000; it
	// must not be negative.
	MaxKeys int
	// IdleTimeout drops keys unused for this long. A key dropped before its
	// limiter has fully recovered starts afresh, so the default is the time
	// the limiter takes to recover completely (Per for a window, Burst ×
	// interval for a bucket; the longest of a [Multi]'s limits). It must
	// not be negative.
	IdleTimeout time.Duration
	// Now is the clock for AllowN; AllowAt takes the time as a parameter.
	// If nil, time.Now is used.
	Now func() time.Time
	// OnEvict, if set, is called after a key is dropped, outside any lock.
	OnEvict func(key string, reason EvictReason)
}

// KeyedStats is a snapshot of a [Keyed]'s counters.
type KeyedStats struct {
	Keys            int    // keys tracked now
	Allowed         uint64 // events allowed
	Denied          uint64 // events denied
	EvictedIdle     uint64 // keys dropped for idleness
	EvictedCapacity uint64 // keys dropped to respect MaxKeys
}

// Keyed keeps one limiter per key, created on demand by a factory and
// dropped when idle or when MaxKeys is reached, so its memory is bounded
// whatever keys clients send. Keys are spread over up to 64 shards, each
// with its own lock, so concurrent callers rarely contend.
//
// Guide (Security Considerations → Rate Limiting, "IP-based Limiting" and
// "User-based Limiting"): key by [ClientIP] for anonymous traffic, by user
// or API key for authenticated traffic, and by route for expensive
// endpoints. Keyed is per process: behind a load balancer with N
// instances each admits the limit, N times in total; use
// redislimit.Limiter for one global limit.
//
// A Keyed is safe for concurrent use. It starts no goroutine: idle keys
// are swept as new keys arrive, or by [Keyed.Sweep].
type Keyed struct {
	newLimiter func() (Limiter, error)
	now        func() time.Time
	onEvict    func(string, EvictReason)
	idle       int64 // ns
	perShard   int
	maxKeys    int
	seed       maphash.Seed
	mask       uint64
	shards     []keyedShard
	limits     []Limit
}

// keyedShard is one lock's worth of keys, padded to its own cache lines.
type keyedShard struct {
	mu        sync.RWMutex
	m         map[string]*keyedEntry // guarded by mu
	list      []*keyedEntry          // guarded by mu: the same entries, for sampling and sweeping
	lastSweep int64                  // guarded by mu: Unix ns
	rng       uint64                 // guarded by mu: xorshift state for eviction samples

	allowed, denied         atomic.Uint64
	evictedIdle, evictedCap atomic.Uint64
	_                       [40]byte
}

type keyedEntry struct {
	lim  Limiter
	key  string
	idx  int          // position in the shard's list; guarded by the shard's mu
	last atomic.Int64 // Unix ns of the last use
}

var _ KeyedLimiter = (*Keyed)(nil)

// NewKeyed returns a keyed limiter that gives each new key the limiter
// newLimiter returns, for example
//
//	ratelimit.NewKeyed(func() (ratelimit.Limiter, error) {
//		return ratelimit.NewGCRA(ratelimit.PerSecond(10), ratelimit.Options{})
//	}, ratelimit.KeyedOptions{})
//
// It calls newLimiter once to check it works. newLimiter runs on the
// calling goroutine and never under a lock of the Keyed, so it may call the
// Keyed back; a key that two goroutines create at once keeps the limiter
// of the first and drops the other.
func NewKeyed(newLimiter func() (Limiter, error), opts KeyedOptions) (*Keyed, error) {
	switch {
	case newLimiter == nil:
		return nil, fmt.Errorf("%w: nil limiter factory", ErrInvalidConfig)
	case opts.MaxKeys < 0:
		return nil, fmt.Errorf("%w: MaxKeys must not be negative, got %d", ErrInvalidConfig, opts.MaxKeys)
	case opts.IdleTimeout < 0:
		return nil, fmt.Errorf("%w: IdleTimeout must not be negative, got %v", ErrInvalidConfig, opts.IdleTimeout)
	}
	probe, err := newLimiter()
	if err != nil {
		return nil, fmt.Errorf("ratelimit: limiter factory: %w", err)
	}
	if probe == nil {
		return nil, fmt.Errorf("%w: limiter factory returned nil", ErrInvalidConfig)
	}
	k := &Keyed{newLimiter: newLimiter, onEvict: opts.OnEvict, seed: maphash.MakeSeed(), maxKeys: opts.MaxKeys}
	k.limits = []Limit{probe.Limit()}
	if m, ok := probe.(*Multi); ok {
		k.limits = m.Limits()
	}
	if k.maxKeys == 0 {
		k.maxKeys = 100_000
	}
	k.idle = int64(opts.IdleTimeout)
	if k.idle == 0 {
		k.idle = int64(recoveryTime(probe))
	}
	k.now = Options{Now: opts.Now}.clock()
	n := 1
	for n < 64 && n*2 <= k.maxKeys {
		n *= 2
	}
	k.shards = make([]keyedShard, n)
	k.mask = uint64(n - 1)
	k.perShard = k.maxKeys / n
	for i := range k.shards {
		k.shards[i].m = make(map[string]*keyedEntry)
		k.shards[i].rng = uint64(i)*0x9E3779B97F4A7C15 | 1
	}
	return k, nil
}

// Limits returns the limits each key's limiter enforces.
func (k *Keyed) Limits() []Limit { return k.limits }

// recoveryTime returns how long a limiter takes to forget everything.
func recoveryTime(l Limiter) time.Duration {
	limits := []Limit{l.Limit()}
	if m, ok := l.(*Multi); ok {
		limits = m.Limits()
	}
	var d time.Duration
	for _, lim := range limits {
		d = max(d, lim.Per, time.Duration(int64(lim.Burst)*lim.interval()))
	}
	return d
}

// AllowN reports whether n events may happen now for key; see [KeyedLimiter].
func (k *Keyed) AllowN(_ context.Context, key string, n int) (Decision, error) {
	if k.now == nil {
		return Decision{}, errNotMade("Keyed", "NewKeyed")
	}
	return k.AllowAt(k.now(), key, n)
}

// Allow is shorthand for AllowN(ctx, key, 1) reporting only the verdict.
func (k *Keyed) Allow(key string) bool {
	d, err := k.AllowAt(k.now(), key, 1)
	return err == nil && d.Allowed
}

// AllowAt is AllowN at the given time.
func (k *Keyed) AllowAt(now time.Time, key string, n int) (Decision, error) {
	if len(k.shards) == 0 {
		return Decision{}, errNotMade("Keyed", "NewKeyed")
	}
	if key == "" {
		return Decision{}, fmt.Errorf("%w: keyed limiters need a non-empty key", ErrEmptyKey)
	}
	sh := &k.shards[maphash.String(k.seed, key)&k.mask]
	ns := now.UnixNano()
	sh.mu.RLock()
	e := sh.m[key]
	sh.mu.RUnlock()
	if e == nil {
		var err error
		if e, err = k.insert(sh, key, ns); err != nil {
			return Decision{}, err
		}
	}
	if e.last.Load() < ns {
		e.last.Store(ns)
	}
	d, err := e.lim.AllowN(now, n)
	if err != nil {
		return d, err
	}
	if d.Allowed {
		sh.allowed.Add(uint64(n))
	} else {
		sh.denied.Add(uint64(n))
	}
	return d, nil
}

// Get returns key's limiter, creating it if needed, for callers that want
// to Reserve or Wait on one key.
func (k *Keyed) Get(key string) (Limiter, error) {
	if len(k.shards) == 0 {
		return nil, errNotMade("Keyed", "NewKeyed")
	}
	if key == "" {
		return nil, fmt.Errorf("%w: keyed limiters need a non-empty key", ErrEmptyKey)
	}
	sh := &k.shards[maphash.String(k.seed, key)&k.mask]
	now := k.now().UnixNano()
	sh.mu.RLock()
	e := sh.m[key]
	sh.mu.RUnlock()
	if e == nil {
		var err error
		if e, err = k.insert(sh, key, now); err != nil {
			return nil, err
		}
	}
	e.last.Store(max(e.last.Load(), now))
	return e.lim, nil
}

type evicted struct {
	key    string
	reason EvictReason
}

// insert returns key's entry, creating it (and making room) if needed.
// The factory is the caller's code, so it runs before the shard's lock is
// taken (it may call back into k); its limiter is dropped if another
// goroutine inserted the key meanwhile.
func (k *Keyed) insert(sh *keyedShard, key string, now int64) (*keyedEntry, error) {
	lim, err := k.newLimiter()
	switch {
	case err != nil:
		return nil, fmt.Errorf("ratelimit: limiter factory for key %q: %w", key, err)
	case lim == nil:
		return nil, fmt.Errorf("%w: limiter factory returned nil for key %q", ErrInvalidConfig, key)
	}
	var gone []evicted
	sh.mu.Lock()
	e := sh.m[key]
	if e == nil {
		if now-sh.lastSweep >= k.idle/4 {
			gone = k.sweepLocked(sh, now, gone)
		}
		for len(sh.m) >= k.perShard {
			gone = k.evictOneLocked(sh, gone)
		}
		e = &keyedEntry{lim: lim, key: key, idx: len(sh.list)}
		e.last.Store(now)
		sh.m[key] = e
		sh.list = append(sh.list, e)
	}
	sh.mu.Unlock()
	k.report(gone)
	return e, nil
}

// sweepLocked drops the shard's idle keys. It requires that sh.mu is held.
func (k *Keyed) sweepLocked(sh *keyedShard, now int64, gone []evicted) []evicted {
	sh.lastSweep = now
	for i := 0; i < len(sh.list); {
		if e := sh.list[i]; now-e.last.Load() >= k.idle {
			sh.removeLocked(e)
			sh.evictedIdle.Add(1)
			if k.onEvict != nil {
				gone = append(gone, evicted{e.key, EvictIdle})
			}
			continue // the last entry moved into slot i
		}
		i++
	}
	return gone
}

// evictSample is how many keys eviction compares, as Redis's LRU does.
const evictSample = 8

// evictOneLocked drops the least recently used of a few randomly sampled
// keys. It requires that sh.mu is held.
func (k *Keyed) evictOneLocked(sh *keyedShard, gone []evicted) []evicted {
	var victim *keyedEntry
	for range evictSample {
		// xorshift64: a cheap generator, guarded by the shard lock
		sh.rng ^= sh.rng << 13
		sh.rng ^= sh.rng >> 7
		sh.rng ^= sh.rng << 17
		e := sh.list[sh.rng%uint64(len(sh.list))]
		if victim == nil || e.last.Load() < victim.last.Load() {
			victim = e
		}
	}
	sh.removeLocked(victim)
	sh.evictedCap.Add(1)
	if k.onEvict != nil {
		gone = append(gone, evicted{victim.key, EvictCapacity})
	}
	return gone
}

// removeLocked deletes e from the map and the list. It requires that mu
// is held.
func (sh *keyedShard) removeLocked(e *keyedEntry) {
	last := sh.list[len(sh.list)-1]
	sh.list[e.idx], last.idx = last, e.idx
	sh.list[len(sh.list)-1] = nil
	sh.list = sh.list[:len(sh.list)-1]
	delete(sh.m, e.key)
}

func (k *Keyed) report(gone []evicted) {
	for _, g := range gone {
		k.onEvict(g.key, g.reason)
	}
}

// Sweep drops every key idle for IdleTimeout at now.
func (k *Keyed) Sweep(now time.Time) {
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.Lock()
		gone := k.sweepLocked(sh, now.UnixNano(), nil)
		sh.mu.Unlock()
		k.report(gone)
	}
}

// Len returns the number of keys tracked.
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// MaxKeys returns the bound on tracked keys.
func (k *Keyed) MaxKeys() int { return k.perShard * len(k.shards) }

// Stats returns a snapshot of the counters.
func (k *Keyed) Stats() KeyedStats {
	s := KeyedStats{Keys: k.Len()}
	for i := range k.shards {
		sh := &k.shards[i]
		s.Allowed += sh.allowed.Load()
		s.Denied += sh.denied.Load()
		s.EvictedIdle += sh.evictedIdle.Load()
		s.EvictedCapacity += sh.evictedCap.Load()
	}
	return s
}

package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/sysdesign-go/sysdesign/ratelimit/internal/keytable"
)

// KeyedLimiter is a limit applied separately to each key — per client IP,
// per user, per API key, per route. [Keyed] implements it in memory for one
// process; redislimit.Limiter implements it across every process sharing a
// Redis. The HTTP [Middleware] takes either.
type KeyedLimiter interface {
	// Decide reports whether n events may happen now for key, and
	// consumes them if so. It returns an error for an empty key, a bad
	// n, or a backend failure the limiter's policy does not absorb. It
	// takes a context, not a time, because the decision may be a round
	// trip to a shared store that keeps its own clock.
	Decide(ctx context.Context, key string, n int) (Decision, error)
}

// EvictReason says why a [Keyed] dropped a key.
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
	// MaxKeys bounds the number of keys tracked at once. Keys are spread
	// over up to 64 shards of at least 8 keys each, which share the
	// bound out (rounded down to a multiple of the shard count, as
	// [Keyed.MaxKeys] reports). When a key's shard is full, the new key
	// evicts the least recently used of 8 keys of the shard (Redis's
	// allkeys-lru samples 8 too), which forgets that key's state: under
	// a flood of distinct keys memory stays bounded, at the price of
	// letting an evicted key start afresh. The 7 most recently used keys
	// of a shard are never the one evicted, so a key in constant use
	// survives a flood. Default 100,000; it must not be negative.
	MaxKeys int
	// IdleTimeout drops keys unused for this long. A key dropped before
	// its limit has fully recovered starts afresh, so the default is the
	// time the limit takes to recover completely (Per for a window,
	// Burst × interval for a bucket; the longest of several limits). It
	// must not be negative.
	IdleTimeout time.Duration
	// Now is the clock of Allow and Decide; AllowN takes the time as a
	// parameter. If nil, the clock is the wall time at NewKeyed plus the
	// monotonic time elapsed since: it reads faster than time.Now and
	// ignores steps of the wall clock, but drifts from it as far as the
	// system's clock is slewed, so pass time.Now to mix Decide with
	// AllowN(time.Now(), ...) on the same keys.
	Now func() time.Time
	// OnEvict, if set, is called after a key is dropped, outside any lock.
	OnEvict func(key string, reason EvictReason)
}

// Stats is a snapshot of a [Keyed]'s counters.
type Stats struct {
	Keys            int    // keys tracked now
	Allowed         uint64 // events allowed
	Denied          uint64 // events denied
	EvictedIdle     uint64 // keys dropped for idleness
	EvictedCapacity uint64 // keys dropped to respect MaxKeys
}

// Keyed applies a limit to each key separately, with memory bounded
// whatever keys clients send: a key is tracked from its first event and
// dropped when idle or when MaxKeys is reached.
//
// Each key costs one slot of a hash table that holds the key, the time of
// its last use and the algorithm's state inline (8 to 24 bytes: one
// timestamp for GCRA and the token bucket, a window's counters); no
// object per key, no allocation per decision. A token bucket is kept in
// GCRA's form, one timestamp instead of tokens and a time: the two forms
// are one bucket, and decide every request alike, field by field. A key
// of up to 15 bytes, such as an IPv4 address, is stored in the slot
// itself; a longer key is kept as a string beside it. The sliding log's
// timestamps and a key under several limits take an allocation of their
// own. Keys are spread over up to 64 shards, each with its own lock, so
// concurrent callers rarely contend.
//
// Guide (Security Considerations → Rate Limiting, "IP-based Limiting" and
// "User-based Limiting"): key by [ClientIP] for anonymous traffic, by user
// or API key for authenticated traffic, and by route for expensive
// endpoints; one key for every request makes one limit for the whole
// service. Keyed is per process: behind a load balancer with N instances
// each admits the limit, N times in total; use redislimit.Limiter for one
// global limit.
//
// A Keyed is safe for concurrent use. It starts no goroutine, so it has no
// Close: idle keys are swept as new keys arrive, or by [Keyed.Sweep].
type Keyed struct {
	t         keyedTable
	limits    []Limit
	capacity  int              // the largest n every limit can grant
	now       func() time.Time // KeyedOptions.Now, or nil for the monotonic clock
	epoch     time.Time        // NewKeyed's time.Now, with its monotonic reading
	epochNano int64            // epoch.UnixNano()
}

// keyedTable is a keytable.Table of one algorithm's state.
type keyedTable interface {
	take(key string, now, n int64) Decision
	sweep(now int64)
	len() int
	maxKeys() int
	stats() keytable.Stats
}

// table is the keyedTable of the algorithms whose state is S.
type table[S any, P state[S]] struct {
	*keytable.Table[S]
	p params
}

func (t *table[S, P]) take(key string, now, n int64) Decision {
	r := t.Lock(key, now)
	d := P(r.State).take(&t.p, now, n, noWait, true)
	r.Unlock(d.Allowed, uint64(n))
	return d
}

func (t *table[S, P]) sweep(now int64)       { t.Sweep(now) }
func (t *table[S, P]) len() int              { return t.Len() }
func (t *table[S, P]) maxKeys() int          { return t.MaxKeys() }
func (t *table[S, P]) stats() keytable.Stats { return t.Stats() }

// newTable returns the table of a state type, whose state for a key
// never seen is fresh().
func newTable[S any, P state[S]](p params, maxKeys int, idle int64, fresh func() S, onEvict func(string, bool)) *table[S, P] {
	return &table[S, P]{keytable.New(maxKeys, idle, fresh, onEvict), p}
}

// multiState is the state of a key under several limits: a [Multi] of
// its own.
type multiState struct{ m *Multi }

func (s *multiState) take(_ *params, now, n, maxWait int64, commit bool) Decision {
	return s.m.take(now, n, maxWait, commit)
}

var _ KeyedLimiter = (*Keyed)(nil)

// NewKeyed returns a limiter that applies limits (at least one; several
// are enforced together, as a [Multi] does) to each key with the
// algorithm alg, for example
//
//	ratelimit.NewKeyed(ratelimit.AlgGCRA, ratelimit.KeyedOptions{}, ratelimit.PerSecond(10))
//
// Bad input gets an error wrapping [ErrInvalidConfig].
func NewKeyed(alg Algorithm, opts KeyedOptions, limits ...Limit) (*Keyed, error) {
	switch {
	case len(limits) == 0:
		return nil, fmt.Errorf("%w: a keyed limiter needs at least one limit", ErrInvalidConfig)
	case opts.MaxKeys < 0:
		return nil, fmt.Errorf("%w: MaxKeys must not be negative, got %d", ErrInvalidConfig, opts.MaxKeys)
	case opts.IdleTimeout < 0:
		return nil, fmt.Errorf("%w: IdleTimeout must not be negative, got %v", ErrInvalidConfig, opts.IdleTimeout)
	}
	epoch := time.Now()
	k := &Keyed{limits: limits, now: opts.Now, epoch: epoch, epochNano: epoch.UnixNano(), capacity: int(^uint(0) >> 1)}
	var idle time.Duration
	for i, l := range limits {
		if _, err := New(alg, l); err != nil {
			return nil, fmt.Errorf("limit %d (%v): %w", i, l, err)
		}
		k.capacity = min(k.capacity, l.Capacity(alg))
		idle = max(idle, l.Per, time.Duration(int64(l.Burst)*l.interval()))
	}
	if opts.IdleTimeout > 0 {
		idle = opts.IdleTimeout
	}
	maxKeys := opts.MaxKeys
	if maxKeys == 0 {
		maxKeys = 100_000
	}
	var onEvict func(string, bool)
	if opts.OnEvict != nil {
		onEvict = func(key string, idle bool) {
			r := EvictCapacity
			if idle {
				r = EvictIdle
			}
			opts.OnEvict(key, r)
		}
	}
	p := newParams(limits[0])
	if len(limits) > 1 {
		k.t = newTable[multiState](p, maxKeys, int64(idle), func() multiState {
			m, _ := NewMulti(alg, limits) // the limits were checked above
			return multiState{m}
		}, onEvict)
		return k, nil
	}
	switch alg {
	case AlgLeakyBucket:
		k.t = newTable[leakyBucketState](p, maxKeys, int64(idle), freshLeakyBucket, onEvict)
	case AlgFixedWindow:
		k.t = newTable[fixedWindowState](p, maxKeys, int64(idle), freshFixedWindow, onEvict)
	case AlgSlidingLog:
		k.t = newTable[slidingLogState](p, maxKeys, int64(idle), func() slidingLogState { return slidingLogState{} }, onEvict)
	case AlgSlidingWindow:
		if uint64(limits[0].Events) <= math.MaxUint32 {
			k.t = newTable[slidingState[uint32]](p, maxKeys, int64(idle), freshSlidingWindow[uint32], onEvict)
		} else {
			k.t = newTable[slidingState[int64]](p, maxKeys, int64(idle), freshSlidingWindow[int64], onEvict)
		}
	default: // AlgGCRA, and AlgTokenBucket in GCRA's form: New accepted alg
		k.t = newTable[gcraState](p, maxKeys, int64(idle), freshGCRA, onEvict)
	}
	return k, nil
}

// Limits returns the limits applied to each key.
func (k *Keyed) Limits() []Limit { return k.limits }

// Allow reports whether one event may happen now, by the configured
// clock, for key, and consumes it if so. It reports false for an empty
// key and on the zero Keyed.
func (k *Keyed) Allow(key string) bool {
	d, err := k.Decide(context.Background(), key, 1)
	return err == nil && d.Allowed
}

// AllowN reports whether n events may happen at now for key, and
// consumes them if so. A now outside the years 1823 to 2116 (the zero
// time.Time) is refused with [ErrInvalidConfig], as by [Limiter].
func (k *Keyed) AllowN(now time.Time, key string, n int) (Decision, error) {
	if err := checkNow(now); err != nil {
		return Decision{}, err
	}
	return k.allowN(now.UnixNano(), key, n)
}

func (k *Keyed) allowN(now int64, key string, n int) (Decision, error) {
	if k.t == nil || key == "" || uint(n)-1 >= uint(k.capacity) {
		return k.refuse(key, n)
	}
	// The decision under one limit is written out for each algorithm (but
	// the rare sliding window whose quota needs 64 bits): k.t.take costs a
	// call through the interface, and from the generic method another
	// through the type parameter to the state's take, both with every
	// inlining they prevent, on the path of every keyed decision.
	switch t := k.t.(type) {
	case *table[gcraState, *gcraState]:
		r := t.Lock(key, now)
		return unlock(r, r.State.take(&t.p, now, int64(n), noWait, true), n)
	case *table[leakyBucketState, *leakyBucketState]:
		r := t.Lock(key, now)
		return unlock(r, r.State.take(&t.p, now, int64(n), noWait, true), n)
	case *table[fixedWindowState, *fixedWindowState]:
		r := t.Lock(key, now)
		return unlock(r, r.State.take(&t.p, now, int64(n), noWait, true), n)
	case *table[slidingState[uint32], *slidingState[uint32]]:
		r := t.Lock(key, now)
		return unlock(r, r.State.take(&t.p, now, int64(n), noWait, true), n)
	case *table[slidingLogState, *slidingLogState]:
		r := t.Lock(key, now)
		return unlock(r, r.State.take(&t.p, now, int64(n), noWait, true), n)
	}
	return k.t.take(key, now, int64(n)), nil
}

// unlock records decision d of n events in r's shard, unlocks it and
// returns d.
func unlock[S any](r keytable.Ref[S], d Decision, n int) (Decision, error) {
	r.Unlock(d.Allowed, uint64(n))
	return d, nil
}

// refuse returns the error allowN gives when k, key or n is bad: kept
// out of the path every decision takes.
func (k *Keyed) refuse(key string, n int) (Decision, error) {
	if k.t == nil {
		return Decision{}, errNotMade("Keyed", "NewKeyed")
	}
	if key == "" {
		return Decision{}, fmt.Errorf("%w: keyed limiters need a non-empty key", ErrEmptyKey)
	}
	return Decision{Limit: k.limits[0]}, checkN(n, k.capacity)
}

// Decide is AllowN at the Keyed's clock (KeyedOptions.Now); see [KeyedLimiter].
func (k *Keyed) Decide(_ context.Context, key string, n int) (Decision, error) {
	if k.now != nil {
		return k.AllowN(k.now(), key, n)
	}
	// The default clock: the wall time at NewKeyed plus the monotonic
	// time since, always within the years a limiter accepts.
	return k.allowN(k.epochNano+int64(time.Since(k.epoch)), key, n)
}

// Sweep drops every key idle for IdleTimeout at now.
func (k *Keyed) Sweep(now time.Time) {
	if k.t != nil {
		k.t.sweep(now.UnixNano())
	}
}

// Len returns the number of keys tracked.
func (k *Keyed) Len() int {
	if k.t == nil {
		return 0
	}
	return k.t.len()
}

// MaxKeys returns the bound on tracked keys.
func (k *Keyed) MaxKeys() int {
	if k.t == nil {
		return 0
	}
	return k.t.maxKeys()
}

// Stats returns a snapshot of the counters.
func (k *Keyed) Stats() Stats {
	if k.t == nil {
		return Stats{}
	}
	s := k.t.stats()
	return Stats{Keys: s.Keys, Allowed: s.Allowed, Denied: s.Denied, EvictedIdle: s.EvictedIdle, EvictedCapacity: s.EvictedCap}
}

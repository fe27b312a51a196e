package rediscache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/sysdesign-go/sysdesign/cache"
)

// Multi-level cache — L1 in process, L2 in Redis, then the source.
//
// The guide: "How would you design a multi-level caching system? L1 Cache:
// Application-level (in-memory) ... Fastest access, lowest latency ...
// Limited by application memory. L2 Cache: Distributed cache (Redis,
// Memcached) ... Network latency, but shared across instances." And, for
// invalidation: "Manual Invalidation: Application-controlled invalidation.
// Event-Driven: Invalidate on data changes."
//
// [MultiLevel] reads L1, then L2; an L2 hit fills L1 with the entry's
// remaining TTL (capped by [MultiLevelOptions.L1TTL]), so L1 never outlives
// L2. Writes and deletes go through both levels. With an
// [MultiLevelOptions.Channel], every write and delete is published on Redis
// pub/sub and every other process's MultiLevel on that channel drops the
// key from its L1 — event-driven invalidation within a round trip. If the
// subscription drops, missed messages cannot be known, so on resubscribing
// each process clears its whole L1.
//
// Degradation: when Redis is down or slow, an L2 call fails within the
// L2 [Cache]'s timeout; lookups fall back to L1 and (through [cache.Aside] or
// another pattern) to the source, errors are counted in [MultiLevelStats]
// and reported to [MultiLevelOptions.OnError]. Writes return the L2 error
// after updating L1. After a few failures in a row a circuit breaker stops
// calling Redis, so a blackholed Redis (packets dropped, every call waits
// out its timeout) costs what a refused one does, and probes it again
// shortly; L2 entries that missed a write or a deletion meanwhile are
// never served stale (see [MultiLevelOptions.BreakAfter]).

// MultiLevelOptions configures a [MultiLevel]. The zero value uses no
// pub/sub invalidation and keeps L1 entries as long as their L2 TTL.
type MultiLevelOptions struct {
	// Channel is the Redis pub/sub channel for invalidation messages;
	// every process sharing the L2 must use the same one. Default "": no
	// cross-process invalidation (each L1 is then stale for up to L1TTL).
	Channel string
	// L1TTL caps the lifetime of L1 entries, bounding staleness when
	// invalidation messages are lost. Default 0: no cap beyond the L2 TTL.
	L1TTL time.Duration
	// OnError is called with every L2 or pub/sub error, outside any lock.
	// Default nil.
	OnError func(err error)
	// OnInvalidate is called after a message from another process removed
	// keys from L1, with the key or prefix. Default nil.
	OnInvalidate func(keyOrPrefix string, prefix bool)
	// HealthCheck is how long the subscription may stay quiet before it is
	// pinged; an unanswered ping for twice as long makes it re-subscribe
	// (and clear L1). Default 0: one second.
	HealthCheck time.Duration
	// BreakAfter is how many L2 failures in a row open the L2 circuit
	// breaker: while it is open no call goes to Redis, lookups miss L2,
	// and writes and deletions update L1 only and return an error wrapping
	// [ErrL2Open]. Default 0: 5. Negative: no breaker, every call goes to
	// Redis and waits for its timeout while Redis does not answer.
	BreakAfter int
	// BreakFor is how long the breaker stays open before it lets one probe
	// call through; the probe first deletes from L2 the entries that
	// missed a write or a deletion, and a success closes the breaker. It
	// is also the pause before a failed deletion of those entries is tried
	// again. Default 0: 500 ms.
	BreakFor time.Duration
	// OnL2State is called after every change of the L2 breaker's state
	// (closed, open, half-open), in order, outside any lock, on the
	// goroutine whose call caused it. Default nil.
	OnL2State func(from, to gobreaker.State)
}

// MultiLevel is an L1 [cache.Memory] store over an L2 [Cache]; it is a
// [cache.Store] itself, so [cache.Aside], [cache.WriteThrough],
// [cache.WriteBehind] and [cache.RefreshAhead] run over it. It is safe for concurrent use. Create it with
// [NewMultiLevel] and stop its subscriber with [MultiLevel.Close]. A zero
// MultiLevel is not usable: its methods return an error wrapping
// [cache.ErrInvalidConfig] (Get a miss) at once.
type MultiLevel[V any] struct {
	l1   *cache.Memory[string, V]
	l2   *Cache[V]
	opts MultiLevelOptions
	id   string // tags our own messages so we skip them

	psMu   sync.Mutex
	ps     *redis.PubSub // guarded by psMu; replaced by listen on re-subscription
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	// closeErr is what closing the subscription returned; written in once,
	// read after it.
	closeErr error

	guard *l2Guard

	stats struct {
		l1Hits, l2Hits, misses, l2Errors, invalidations, resyncs atomic.Uint64
	}
}

// MultiLevelStats is a snapshot of a [MultiLevel]'s counters.
type MultiLevelStats struct {
	L1Hits, L2Hits, Misses uint64
	// L2Errors counts failed L2 calls: while Redis is unavailable it grows
	// and lookups are served by L1 and the source.
	L2Errors uint64
	// Invalidations counts messages from other processes applied to L1.
	Invalidations uint64
	// Resyncs counts L1 clears after the subscription was re-established.
	Resyncs uint64
	// L2State is the L2 breaker's state (always closed without a breaker).
	L2State gobreaker.State
	// L2Skipped counts L2 calls not made because the breaker was open.
	L2Skipped uint64
	// L2Unrepaired counts the keys and prefixes whose L2 entries missed a
	// write or a deletion and are not read from L2 until deleted there. It
	// stops at 10,000: past that no key is read from L2 until the store's
	// whole Prefix has been cleared (see [MultiLevelOptions.BreakFor]).
	L2Unrepaired int
}

// HitRatio returns (L1Hits + L2Hits) / lookups, 0 before any lookup.
func (s MultiLevelStats) HitRatio() float64 { return hitRatio(s.L1Hits+s.L2Hits, s.Misses) }

// NewMultiLevel returns a two-level cache. With a Channel it subscribes
// before returning, so it fails if Redis cannot be reached then.
func NewMultiLevel[V any](ctx context.Context, l1 *cache.Memory[string, V], l2 *Cache[V], opts MultiLevelOptions) (*MultiLevel[V], error) {
	if l1 == nil || l2 == nil {
		return nil, invalid("multi-level cache needs both levels (L1 %v, L2 %v)", l1 != nil, l2 != nil)
	}
	if opts.L1TTL < 0 || opts.HealthCheck < 0 || opts.BreakFor < 0 {
		return nil, invalid("negative L1TTL %v, HealthCheck %v or BreakFor %v", opts.L1TTL, opts.HealthCheck, opts.BreakFor)
	}
	if opts.BreakAfter > math.MaxUint32 {
		return nil, invalid("BreakAfter %d above %d", opts.BreakAfter, uint32(math.MaxUint32))
	}
	if opts.HealthCheck == 0 {
		opts.HealthCheck = time.Second
	}
	if opts.BreakAfter == 0 {
		opts.BreakAfter = 5
	}
	if opts.BreakFor == 0 {
		opts.BreakFor = 500 * time.Millisecond
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	m := &MultiLevel[V]{l1: l1, l2: l2, opts: opts, id: hex.EncodeToString(b[:]), guard: newL2Guard(opts)}
	m.guard.multi = multiNode(l2.client)
	if opts.Channel == "" {
		return m, nil
	}
	m.ps = l2.client.Subscribe(ctx, opts.Channel)
	sctx, cancel := context.WithTimeout(ctx, l2.timeout*10)
	_, err := m.ps.Receive(sctx) // the subscription confirmation
	cancel()
	if err != nil {
		_ = m.ps.Close()
		return nil, fmt.Errorf("rediscache: subscribing to invalidation channel %q: %w", opts.Channel, err)
	}
	var rctx context.Context
	rctx, m.cancel = context.WithCancel(context.Background())
	m.done = make(chan struct{})
	go m.listen(rctx)
	return m, nil
}

// Invalidation messages are "<sender id> k <key>" or "<sender id> p
// <prefix>".
func (m *MultiLevel[V]) publish(ctx context.Context, kind byte, key string) error {
	if m.opts.Channel == "" {
		return nil
	}
	err := m.call(ctx, "invalidation", key, func() error {
		ctx, cancel := context.WithTimeout(ctx, m.l2.timeout)
		defer cancel()
		return m.l2.client.Publish(ctx, m.opts.Channel, m.id+" "+string(kind)+" "+key).Err()
	})
	if err != nil {
		return m.report(fmt.Errorf("rediscache: publishing invalidation of %q: %w", key, err))
	}
	return nil
}

func (m *MultiLevel[V]) pubsub() *redis.PubSub {
	m.psMu.Lock()
	defer m.psMu.Unlock()
	return m.ps
}

// listen applies invalidation messages until ctx ends. It pings the
// subscription when it is quiet and re-subscribes when a ping goes
// unanswered for two health-check intervals (a dead or partitioned link);
// the re-subscription confirmation then clears L1.
func (m *MultiLevel[V]) listen(ctx context.Context) {
	defer close(m.done)
	every := m.opts.HealthCheck
	pinged := false
	var silentSince time.Time
	for {
		ps := m.pubsub()
		msg, err := ps.ReceiveTimeout(ctx, every)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne interface{ Timeout() bool }
			if !errors.As(err, &ne) || !ne.Timeout() {
				// A broken link: go-redis reconnects on the next receive.
				m.l2Error(fmt.Errorf("rediscache: invalidation subscription: %w", err))
				t := time.NewTimer(every)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return
				}
				continue
			}
			switch {
			case !pinged:
				pinged, silentSince = true, time.Now()
				pctx, cancel := context.WithTimeout(ctx, m.l2.timeout)
				_ = ps.Ping(pctx)
				cancel()
			case time.Since(silentSince) >= 2*every:
				m.resubscribe(ctx)
				pinged = false
			}
			continue
		}
		pinged = false
		switch msg := msg.(type) {
		case *redis.Subscription:
			// A subscription after a dropped link: messages sent meanwhile
			// are lost, so nothing in L1 can be trusted.
			if msg.Kind == "subscribe" {
				m.stats.resyncs.Add(1)
				m.l1.DeleteFunc(func(string, V) bool { return true })
			}
		case *redis.Message:
			m.apply(msg.Payload)
		}
	}
}

func (m *MultiLevel[V]) resubscribe(ctx context.Context) {
	m.l2Error(fmt.Errorf("rediscache: invalidation subscription on %q silent for %v, re-subscribing", m.opts.Channel, 2*m.opts.HealthCheck))
	m.psMu.Lock()
	defer m.psMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	_ = m.ps.Close()
	m.ps = m.l2.client.Subscribe(ctx, m.opts.Channel)
}

func (m *MultiLevel[V]) apply(payload string) {
	id, rest, ok := strings.Cut(payload, " ")
	if !ok || id == m.id || len(rest) < 2 || rest[1] != ' ' {
		return
	}
	key := rest[2:]
	switch rest[0] {
	case 'k':
		m.l1.Delete(key)
	case 'p':
		m.l1.DeleteFunc(func(k string, _ V) bool { return strings.HasPrefix(k, key) })
	default:
		return
	}
	m.stats.invalidations.Add(1)
	if m.opts.OnInvalidate != nil {
		m.opts.OnInvalidate(key, rest[0] == 'p')
	}
}

// report counts and reports an L2 failure; a call skipped by the open
// breaker is counted in L2Skipped instead.
func (m *MultiLevel[V]) report(err error) error {
	if errors.Is(err, ErrL2Open) {
		return err
	}
	return m.l2Error(err)
}

func (m *MultiLevel[V]) l2Error(err error) error {
	m.stats.l2Errors.Add(1)
	if m.opts.OnError != nil {
		m.opts.OnError(err)
	}
	return err
}

// Get returns key's value and its remaining TTL (0 for none) from L1,
// else from L2 (filling L1). An L2 failure is
// counted and reported, and the lookup is a miss, so callers fall back to
// the source; the error is not returned. While the L2 breaker is open, or
// when key's L2 entry missed a write, L2 is not asked.
func (m *MultiLevel[V]) Get(ctx context.Context, key string) (V, time.Duration, bool, error) {
	var v V
	if m.l1 == nil {
		return v, 0, false, errZeroMultiLevel
	}
	if v, ttl, ok, _ := m.l1.AsStore().Get(ctx, key); ok {
		m.stats.l1Hits.Add(1)
		return v, ttl, true, nil
	}
	if m.guard.suspect(key) {
		m.stats.misses.Add(1)
		return v, 0, false, nil
	}
	var ttl time.Duration
	var ok bool
	err := m.call(ctx, "lookup", key, func() (err error) {
		v, ttl, ok, err = m.l2.Get(ctx, key)
		return err
	})
	if err != nil {
		m.report(err)
		m.stats.misses.Add(1)
		var zero V
		return zero, 0, false, nil
	}
	if !ok {
		m.stats.misses.Add(1)
		return v, 0, false, nil
	}
	m.stats.l2Hits.Add(1)
	_ = m.l1.SetWithTTL(key, v, m.l1TTL(ttl)) // a value too large for L1 is served from L2
	return v, ttl, true, nil
}

func (m *MultiLevel[V]) l1TTL(ttl time.Duration) time.Duration {
	if m.opts.L1TTL > 0 && (ttl == 0 || ttl > m.opts.L1TTL) { // ttl == L1TTL: either branch returns it
		return m.opts.L1TTL
	}
	return ttl
}

// Set writes L1 and L2 and tells the other
// processes to drop key. It returns the L2 error, if any, after L1 was
// updated.
func (m *MultiLevel[V]) Set(ctx context.Context, key string, value V, ttl time.Duration) error {
	if m.l1 == nil {
		return errZeroMultiLevel
	}
	if ttl < 0 {
		return invalid("negative TTL %v for key %q", ttl, key)
	}
	if ttl == 0 {
		ttl = m.l2.opts.DefaultTTL
	}
	if err := m.l1.SetWithTTL(key, value, m.l1TTL(ttl)); err != nil && !errors.Is(err, cache.ErrTooLarge) {
		return err
	}
	if err := m.call(ctx, "write", key, func() error { return m.l2.Set(ctx, key, value, ttl) }); err != nil {
		m.guard.miss(key, false)
		return m.report(err)
	}
	return m.publish(ctx, 'k', key)
}

// Delete deletes key from L2, then from L1 (so a
// concurrent lookup cannot refill L1 from L2), and tells the other
// processes to drop it — the last two even if L2 failed, whose error it
// then returns.
func (m *MultiLevel[V]) Delete(ctx context.Context, key string) error {
	if m.l1 == nil {
		return errZeroMultiLevel
	}
	err := m.call(ctx, "deletion", key, func() error { return m.l2.Delete(ctx, key) })
	if err != nil {
		m.guard.miss(key, false)
		m.report(err)
	}
	m.l1.Delete(key)
	return errors.Join(err, m.publish(ctx, 'k', key))
}

// DeletePrefix deletes every key starting with prefix from every level
// and from every other process's L1 — invalidation by group ("user:42:"),
// the way to delete by tag when the tag is part of the key. It deletes
// from L2 first ([Cache.DeletePrefix]), then from this process's L1, then
// publishes the prefix on the invalidation channel, so a concurrent lookup
// here cannot refill L1 from an L2 that still has the key. If L2 fails, L1
// is cleared and the invalidation published all the same (other processes
// then drop their copies, even if L2 kept some keys), and the error is
// returned. It returns how many keys it removed from L2. While the L2
// breaker is open, L2 and the channel are skipped (the error wraps
// [ErrL2Open]): L1 is cleared, no key under prefix is read from L2 again
// until the probe that ends the outage has deleted them there, and other
// processes drop their L1 copies only if their subscription was
// re-established meanwhile, else when [MultiLevelOptions.L1TTL] ends them.
func (m *MultiLevel[V]) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if m.l1 == nil {
		return 0, errZeroMultiLevel
	}
	if m.l2.opts.Prefix+prefix == "" {
		return 0, invalid("refusing to delete by an empty prefix: the L2 store has no Prefix, so every key in the database would go")
	}
	var n int
	err := m.call(ctx, "deletion of prefix", prefix, func() (err error) {
		n, err = m.l2.DeletePrefix(ctx, prefix)
		return err
	})
	if err != nil {
		m.guard.miss(prefix, true)
		m.report(err)
	}
	m.l1.DeleteFunc(func(k string, _ V) bool { return strings.HasPrefix(k, prefix) })
	return n, errors.Join(err, m.publish(ctx, 'p', prefix))
}

// Stats returns the cache's counters.
func (m *MultiLevel[V]) Stats() MultiLevelStats {
	s := MultiLevelStats{
		L1Hits: m.stats.l1Hits.Load(), L2Hits: m.stats.l2Hits.Load(), Misses: m.stats.misses.Load(),
		L2Errors: m.stats.l2Errors.Load(), Invalidations: m.stats.invalidations.Load(), Resyncs: m.stats.resyncs.Load(),
	}
	if g := m.guard; g != nil {
		s.L2State, s.L2Skipped, s.L2Unrepaired = g.state(), g.skipped.Load(), int(g.count.Load())
	}
	return s
}

// errZeroMultiLevel is what a zero MultiLevel's methods return.
var errZeroMultiLevel = errZero("MultiLevel", "NewMultiLevel")

// Close stops the invalidation subscriber and waits for it to end, or for
// ctx to be done: it then returns an error wrapping ctx's error. It does
// not close the Redis client. Calling Close again waits, under its own
// ctx, for the same subscriber; the error of closing the subscription is
// returned by every call that saw it end.
func (m *MultiLevel[V]) Close(ctx context.Context) error {
	if m.l1 == nil || m.opts.Channel == "" {
		return nil // nothing was started
	}
	m.once.Do(func() {
		m.cancel()
		m.psMu.Lock()
		m.closeErr = m.ps.Close()
		m.psMu.Unlock()
	})
	select {
	case <-m.done:
		return m.closeErr
	case <-ctx.Done():
		return fmt.Errorf("rediscache: the invalidation subscriber on %q is still running: %w", m.opts.Channel, ctx.Err())
	}
}

var _ cache.Store[string, int] = (*MultiLevel[int])(nil)

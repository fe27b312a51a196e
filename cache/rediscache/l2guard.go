package rediscache

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/sysdesign-go/sysdesign/cache"
)

// The L2 guard of a [MultiLevel]: a circuit breaker that stops calling a
// failing Redis, and the record of L2 entries that missed a write or a
// deletion while Redis failed.
//
// The breaker is gobreaker v2's two-step breaker. After
// [MultiLevelOptions.BreakAfter] L2 failures in a row it opens: no L2
// call is made, lookups are L1 misses (so the source answers at once
// instead of after the Redis timeout), writes and deletions update L1
// only and return an error wrapping [ErrL2Open]. After
// [MultiLevelOptions.BreakFor] one call is let through as a probe; if it
// succeeds L2 is used again, else the breaker stays open for another
// BreakFor.
//
// Staleness after an outage. An L2 write or deletion that failed or was
// skipped leaves L2 with an older value than the source. MultiLevel keeps
// every such key (and every prefix of a failed DeletePrefix) in a record,
// never reads those keys from L2, and deletes them from L2 before any
// other L2 call goes through — the half-open probe starts with it, so L2
// serves nothing again until it is repaired. A repair that fails is tried
// again no sooner than BreakFor later. On one server its failure fails the
// call that made it (the call would fail too); on a Cluster it does not:
// one failed master must not stop the calls that go to the others, and
// the record alone keeps the unrepaired keys from being read (see
// multiNode). Past missedLimit entries the
// record stops naming keys: no key is read from L2 until the whole
// namespace under [Options.Prefix] has been deleted (without a
// Prefix, that cannot be done, and this process stops reading L2 for
// good; its writes still go there). Other processes' L1 copies are
// invalidated only by the pub/sub messages that reached them, as always;
// their own L1TTL bounds that.

// missedLimit bounds the keys and prefixes the record names.
const missedLimit = 10_000

type l2Guard struct {
	cb *gobreaker.TwoStepCircuitBreaker[struct{}] // nil: no breaker

	evMu       sync.Mutex
	events     [][2]gobreaker.State // guarded by evMu: state changes not yet delivered
	delivering bool                 // guarded by evMu

	mu       sync.Mutex
	keys     map[string]uint64 // guarded by mu: key → sequence of the last miss
	prefixes map[string]uint64 // guarded by mu
	all      bool              // guarded by mu: too many to name; the whole namespace
	seq      uint64            // guarded by mu
	count    atomic.Int64      // len(keys)+len(prefixes); missedLimit while all
	repairMu sync.Mutex        // held by the one goroutine repairing L2
	retryAt  atomic.Int64      // Unix nanoseconds before which no repair is tried after one failed
	retry    time.Duration     // BreakFor: the pause after a failed repair
	multi    bool              // L2 spans several servers: a failed repair does not fail the call

	skipped atomic.Uint64
}

// errExcluded marks a result that says nothing about Redis's health.
var errExcluded = errors.New("rediscache: excluded from the L2 breaker")

func newL2Guard(opts MultiLevelOptions) *l2Guard {
	g := &l2Guard{keys: map[string]uint64{}, prefixes: map[string]uint64{}, retry: opts.BreakFor}
	if opts.BreakAfter < 0 { // never 0: NewMultiLevel made 0 the default, 5
		return g
	}
	after := uint32(opts.BreakAfter)
	g.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "cache-l2",
		Timeout:     opts.BreakFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= after },
		IsExcluded:  func(err error) bool { return errors.Is(err, errExcluded) },
		// Runs under gobreaker's lock: only queue the change.
		OnStateChange: func(_ string, from, to gobreaker.State) {
			g.evMu.Lock()
			g.events = append(g.events, [2]gobreaker.State{from, to})
			g.evMu.Unlock()
		},
	})
	return g
}

// state returns the breaker's state (closed when there is none).
func (g *l2Guard) state() gobreaker.State {
	if g.cb == nil {
		return gobreaker.StateClosed
	}
	return g.cb.State()
}

// deliver hands queued state changes to hook, in order, outside any lock,
// from one goroutine at a time.
func (g *l2Guard) deliver(hook func(from, to gobreaker.State)) {
	for {
		g.evMu.Lock()
		if g.delivering || len(g.events) == 0 {
			if hook == nil {
				g.events = g.events[:0]
			}
			g.evMu.Unlock()
			return
		}
		ev := g.events[0]
		g.events = g.events[1:]
		g.delivering = true
		g.evMu.Unlock()
		if hook != nil {
			hook(ev[0], ev[1])
		}
		g.evMu.Lock()
		g.delivering = false
		g.evMu.Unlock()
	}
}

// miss records that key's L2 entry missed a write or a deletion.
func (g *l2Guard) miss(key string, prefix bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.all {
		return
	}
	if g.recorded() >= missedLimit {
		g.all = true
		g.keys, g.prefixes = map[string]uint64{}, map[string]uint64{}
		g.count.Store(missedLimit)
		return
	}
	g.seq++ // repairRecord only compares sequences for equality: any step that never repeats would do
	if prefix {
		g.prefixes[key] = g.seq
	} else {
		g.keys[key] = g.seq
	}
	g.count.Store(g.recorded())
}

// recorded returns the number of keys and prefixes the record names; the
// caller holds mu.
func (g *l2Guard) recorded() int64 { return int64(len(g.keys) + len(g.prefixes)) }

// suspect reports whether L2 may hold a stale value for key.
func (g *l2Guard) suspect(key string) bool {
	if g.count.Load() == 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.all {
		return true
	}
	if _, ok := g.keys[key]; ok {
		return true
	}
	for p := range g.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// repair deletes the recorded entries from L2 and forgets those not
// recorded again meanwhile. One goroutine repairs at a time; the others go
// on (the record keeps their lookups off the entries being repaired).
// After a failed repair none is tried for [MultiLevelOptions.BreakFor].
func (m *MultiLevel[V]) repair(ctx context.Context) error {
	g := m.guard
	// (< or <=: they differ only in the nanosecond the pause ends.)
	if g.count.Load() == 0 || time.Now().UnixNano() < g.retryAt.Load() || !g.repairMu.TryLock() {
		return nil
	}
	defer g.repairMu.Unlock()
	err := m.repairRecord(ctx)
	if err != nil {
		g.retryAt.Store(time.Now().Add(g.retry).UnixNano())
	}
	return err
}

// repairRecord is [MultiLevel.repair]'s work; the caller holds repairMu.
func (m *MultiLevel[V]) repairRecord(ctx context.Context) error {
	g := m.guard
	g.mu.Lock()
	all, keys, prefixes := g.all, maps.Clone(g.keys), maps.Clone(g.prefixes)
	g.mu.Unlock()
	if all {
		if m.l2.opts.Prefix == "" {
			return nil // cannot be repaired: lookups stay off L2
		}
		if _, err := m.l2.DeletePrefix(ctx, ""); err != nil {
			return fmt.Errorf("rediscache: clearing L2 after an outage: %w", err)
		}
		g.mu.Lock()
		g.all = false
		g.count.Store(0) // nothing is recorded while all is set
		g.mu.Unlock()
		return nil
	}
	if err := m.l2.DeleteMany(ctx, slices.Collect(maps.Keys(keys))); err != nil { // no keys: DeleteMany makes no call
		return fmt.Errorf("rediscache: deleting %d L2 keys that missed a write: %w", len(keys), err)
	}
	for p := range prefixes {
		if _, err := m.l2.DeletePrefix(ctx, p); err != nil {
			return fmt.Errorf("rediscache: deleting L2 prefix %q that missed a deletion: %w", p, err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, seq := range keys {
		if g.keys[k] == seq {
			delete(g.keys, k)
		}
	}
	for p, seq := range prefixes {
		if g.prefixes[p] == seq {
			delete(g.prefixes, p)
		}
	}
	if !g.all {
		g.count.Store(g.recorded())
	}
	return nil
}

// call runs op against L2 through the breaker, after repairing L2 if
// entries missed a write. While the breaker is open it returns an error
// wrapping [ErrL2Open] at once, without running op.
func (m *MultiLevel[V]) call(ctx context.Context, what, key string, op func() error) error {
	g := m.guard
	var done func(error)
	if g.cb != nil {
		var err error
		if done, err = g.cb.Allow(); err != nil {
			g.skipped.Add(1)
			g.deliver(m.opts.OnL2State)
			return fmt.Errorf("%w: %s of %q not sent to Redis (%w)", ErrL2Open, what, key, err)
		}
	}
	err := m.repair(ctx)
	if err != nil && g.multi {
		// Another master may hold op's key: report the failed repair and go on.
		m.report(err)
		err = nil
	}
	if err == nil {
		err = op()
	}
	if done != nil {
		done(verdict(ctx, err))
		g.deliver(m.opts.OnL2State)
	}
	return err
}

// verdict is what an L2 result says about Redis's health, for the breaker:
// failures of the caller's context and of encoding say nothing.
func verdict(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return errExcluded
	case errors.Is(err, ErrCodec), errors.Is(err, cache.ErrTooLarge), errors.Is(err, cache.ErrInvalidConfig):
		return errExcluded
	}
	return err
}

// multiNode reports whether client spreads keys over several servers (a
// Cluster, or a Ring), where a failure says nothing about the other
// servers.
func multiNode(client redis.UniversalClient) bool {
	switch client.(type) {
	case *redis.ClusterClient, *redis.Ring:
		return true
	}
	return false
}

package resilience

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// breakerStores returns the BreakerStore implementations of this package;
// package redisbreaker runs the same tests on Redis.
func breakerStores(*testing.T) map[string]BreakerStore {
	return map[string]BreakerStore{"memory": NewMemoryBreakerStore()}
}

func TestSharedBreakerAcrossInstances(t *testing.T) {
	for name, store := range breakerStores(t) {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			var mu sync.Mutex
			var seen []StateChange
			opts := SharedBreakerOptions{
				Name: "payments", Rules: BreakerRules{MinRequests: 4, FailureRate: 0.5, Timeout: time.Second, HalfOpenRequests: 1},
				CacheTTL: time.Millisecond, Now: clock.Now,
			}
			a := must(NewSharedBreaker[int](store, opts))
			opts.OnStateChange = func(c StateChange) { mu.Lock(); seen = append(seen, c); mu.Unlock() }
			b := must(NewSharedBreaker[int](store, opts))
			ctx := context.Background()

			for _, fn := range []func(context.Context) (int, error){ok, ok, fail} {
				_, _ = a.Execute(ctx, fn)
			}
			assert.Equal(t, StateClosed, a.State(ctx), "1 failure in 3 calls, below the minimum volume")
			_, _ = a.Execute(ctx, fail) // 2 of 4
			assert.Equal(t, StateOpen, a.Stats().State, "the instance that tripped it knows at once")

			clock.Advance(2 * time.Millisecond) // b's cache expires
			called := false
			_, err := b.Execute(ctx, func(context.Context) (int, error) { called = true; return 0, nil })
			assert.ErrorIs(t, err, ErrOpen, "another instance sees the shared open state")
			assert.False(t, called)
			assert.Contains(t, err.Error(), `breaker "payments"`)

			// After the timeout one probe goes, from whichever instance asks first.
			clock.Advance(time.Second)
			release := make(chan struct{})
			probeDone := make(chan error)
			go func() {
				_, err := a.Execute(ctx, func(context.Context) (int, error) { <-release; return 1, nil })
				probeDone <- err
			}()
			require.Eventually(t, func() bool { return a.Stats().State == StateHalfOpen }, 5*time.Second, time.Millisecond)
			_, err = b.Execute(ctx, ok)
			assert.ErrorIs(t, err, ErrOpen, "only one probe while half-open")
			close(release)
			require.NoError(t, <-probeDone)
			assert.Equal(t, StateClosed, a.Stats().State)
			clock.Advance(2 * time.Millisecond)
			v, err := b.Execute(ctx, ok)
			require.NoError(t, err)
			assert.Equal(t, 1, v)
			assert.Equal(t, StateClosed, b.State(ctx))

			mu.Lock()
			defer mu.Unlock()
			require.NotEmpty(t, seen)
			assert.Equal(t, StateOpen, seen[0].To, "b observed the open state")
			assert.Equal(t, StateClosed, seen[len(seen)-1].To)
		})
	}
}

func TestSharedBreakerStoreRules(t *testing.T) {
	rules := BreakerRules{Window: 10 * time.Second, Buckets: 10, MinRequests: 2, FailureRate: 0.5, Timeout: time.Second, HalfOpenRequests: 2}
	for name, store := range breakerStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			st, ok, err := store.Acquire(ctx, "x", now, rules)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, SharedState{State: StateClosed}, st)

			// Old failures leave the window.
			_, err = store.Record(ctx, "x", 0, OutcomeFailure, now, rules)
			require.NoError(t, err)
			now = now.Add(11 * time.Second)
			for range 2 {
				_, err = store.Record(ctx, "x", 0, OutcomeSuccess, now, rules)
				require.NoError(t, err)
			}
			st, err = store.Record(ctx, "x", 0, OutcomeFailure, now, rules)
			require.NoError(t, err)
			assert.Equal(t, StateClosed, st.State, "1 failure in 3 recent calls")
			st, err = store.Record(ctx, "x", 0, OutcomeFailure, now, rules)
			require.NoError(t, err)
			require.Equal(t, StateOpen, st.State)
			assert.Equal(t, uint64(1), st.Generation)
			assert.Equal(t, now.Add(time.Second).UnixMilli(), st.OpenUntil.UnixMilli())

			// A late result from generation 0 changes nothing.
			st2, err := store.Record(ctx, "x", 0, OutcomeSuccess, now, rules)
			require.NoError(t, err)
			assert.Equal(t, st.Generation, st2.Generation)
			_, ok, err = store.Acquire(ctx, "x", now.Add(999*time.Millisecond), rules)
			require.NoError(t, err)
			assert.False(t, ok)

			// Half-open: two probes; an excluded one gives its slot back.
			now = now.Add(time.Second)
			for i := range 2 {
				st, ok, err = store.Acquire(ctx, "x", now, rules)
				require.NoError(t, err)
				assert.True(t, ok, "probe %d", i)
				assert.Equal(t, StateHalfOpen, st.State)
			}
			_, ok, _ = store.Acquire(ctx, "x", now, rules)
			assert.False(t, ok)
			_, err = store.Record(ctx, "x", st.Generation, OutcomeExcluded, now, rules)
			require.NoError(t, err)
			_, ok, _ = store.Acquire(ctx, "x", now, rules)
			assert.True(t, ok, "the excluded probe's slot was given back")
			st, _ = store.Record(ctx, "x", st.Generation, OutcomeSuccess, now, rules)
			assert.Equal(t, StateHalfOpen, st.State)
			st, _ = store.Record(ctx, "x", st.Generation, OutcomeSuccess, now, rules)
			assert.Equal(t, StateClosed, st.State)
			assert.Equal(t, uint64(3), st.Generation)

			// Probes that never report lose their lease after Timeout.
			for range 2 {
				_, _ = store.Record(ctx, "x", st.Generation, OutcomeFailure, now, rules)
			}
			now = now.Add(time.Second)
			for range 2 {
				_, ok, _ = store.Acquire(ctx, "x", now, rules)
				assert.True(t, ok)
			}
			_, ok, _ = store.Acquire(ctx, "x", now.Add(500*time.Millisecond), rules)
			assert.False(t, ok)
			st, ok, _ = store.Acquire(ctx, "x", now.Add(time.Second), rules)
			assert.True(t, ok, "lease expired")
			st, _ = store.Record(ctx, "x", st.Generation, OutcomeFailure, now.Add(time.Second), rules)
			assert.Equal(t, StateOpen, st.State, "a failed probe reopens")
			loaded, err := store.Load(ctx, "x", now.Add(time.Second), rules)
			require.NoError(t, err)
			assert.Equal(t, st, loaded)
		})
	}
}

func TestSharedBreakerFailsOpenWhenStoreFails(t *testing.T) {
	b := must(NewSharedBreaker[int](brokenStore{}, SharedBreakerOptions{Name: "x"}))
	for range 3 {
		v, err := b.Execute(context.Background(), ok)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
	}
	st := b.Stats()
	assert.Equal(t, uint64(6), st.StoreErrors)
	assert.Equal(t, StateClosed, b.State(context.Background()))
}

type brokenStore struct{}

var errStore = errors.New("store down")

func (brokenStore) Load(context.Context, string, time.Time, BreakerRules) (SharedState, error) {
	return SharedState{}, errStore
}
func (brokenStore) Acquire(context.Context, string, time.Time, BreakerRules) (SharedState, bool, error) {
	return SharedState{}, false, errStore
}
func (brokenStore) Record(context.Context, string, uint64, Outcome, time.Time, BreakerRules) (SharedState, error) {
	return SharedState{}, errStore
}

func TestSharedBreakerBadInput(t *testing.T) {
	store := NewMemoryBreakerStore()
	for _, o := range []SharedBreakerOptions{
		{}, {Name: "a{b}"}, {Name: "x", Rules: BreakerRules{Window: -1}}, {Name: "x", Rules: BreakerRules{Buckets: -1}},
		{Name: "x", Rules: BreakerRules{Window: time.Millisecond, Buckets: 10}}, {Name: "x", Rules: BreakerRules{MinRequests: -1}},
		{Name: "x", Rules: BreakerRules{FailureRate: 2}}, {Name: "x", Rules: BreakerRules{Timeout: -1}}, {Name: "x", Rules: BreakerRules{HalfOpenRequests: -1}},
		{Name: "x", CacheTTL: -1}, {Name: "x", SlowCallThreshold: -1},
	} {
		_, err := NewSharedBreaker[int](store, o)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
	_, err := NewSharedBreaker[int](nil, SharedBreakerOptions{Name: "x"})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

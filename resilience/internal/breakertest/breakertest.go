// Package breakertest holds the contract every [sharedbreaker.Store]
// keeps, as test helpers: package sharedbreaker runs them on its
// MemoryStore and package redisbreaker on Redis, so one table of
// assertions pins both.
package breakertest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/sharedbreaker"
)

// SharedBreakerAcrossInstances checks that two SharedBreakers on store,
// one breaker name, share its state: the one that trips it knows at once,
// the other sees it open when its cache expires, only one probe goes while
// half-open, and a good probe closes it for both.
func SharedBreakerAcrossInstances(t *testing.T, store sharedbreaker.Store) {
	t.Helper()
	clock := NewClock()
	var mu sync.Mutex
	var seen []resilience.StateChange
	opts := sharedbreaker.Options{
		Store: store, Name: "payments", Rules: sharedbreaker.Rules{MinRequests: 4, FailureRate: 0.5, Timeout: time.Second, HalfOpenRequests: 1},
		CacheTTL: time.Millisecond, Now: clock.Now,
	}
	a, err := sharedbreaker.New[int](opts)
	require.NoError(t, err)
	opts.OnStateChange = func(c resilience.StateChange) { mu.Lock(); seen = append(seen, c); mu.Unlock() }
	b, err := sharedbreaker.New[int](opts)
	require.NoError(t, err)
	ctx := context.Background()

	for _, fn := range []func(context.Context) (int, error){ok, ok, fail} {
		_, _ = a.Execute(ctx, fn)
	}
	assert.Equal(t, resilience.StateClosed, a.State(ctx), "1 failure in 3 calls, below the minimum volume")
	_, _ = a.Execute(ctx, fail) // 2 of 4
	assert.Equal(t, resilience.StateOpen, a.Stats().State, "the instance that tripped it knows at once")

	clock.Advance(2 * time.Millisecond) // b's cache expires
	called := false
	_, err = b.Execute(ctx, func(context.Context) (int, error) { called = true; return 0, nil })
	assert.ErrorIs(t, err, resilience.ErrOpen, "another instance sees the shared open state")
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
	require.Eventually(t, func() bool { return a.Stats().State == resilience.StateHalfOpen }, 5*time.Second, time.Millisecond)
	_, err = b.Execute(ctx, ok)
	assert.ErrorIs(t, err, resilience.ErrOpen, "only one probe while half-open")
	close(release)
	require.NoError(t, <-probeDone)
	assert.Equal(t, resilience.StateClosed, a.Stats().State)
	clock.Advance(2 * time.Millisecond)
	v, err := b.Execute(ctx, ok)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	assert.Equal(t, resilience.StateClosed, b.State(ctx))

	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, seen)
	assert.Equal(t, resilience.StateOpen, seen[0].To, "b observed the open state")
	assert.Equal(t, resilience.StateClosed, seen[len(seen)-1].To)
}

// StoreRules checks the rules store applies: the sliding window, the
// minimum volume and failure rate, the generation that discards late
// results, half-open probes whose leases expire, and Load.
func StoreRules(t *testing.T, store sharedbreaker.Store) {
	t.Helper()
	rules := sharedbreaker.Rules{Window: 10 * time.Second, Buckets: 10, MinRequests: 2, FailureRate: 0.5, Timeout: time.Second, HalfOpenRequests: 2}
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st, ok, err := store.Acquire(ctx, "x", now, rules)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, sharedbreaker.Snapshot{State: resilience.StateClosed}, st)

	// Old failures leave the window.
	_, err = store.Record(ctx, "x", 0, sharedbreaker.OutcomeFailure, now, rules)
	require.NoError(t, err)
	now = now.Add(11 * time.Second)
	for range 2 {
		_, err = store.Record(ctx, "x", 0, sharedbreaker.OutcomeSuccess, now, rules)
		require.NoError(t, err)
	}
	st, err = store.Record(ctx, "x", 0, sharedbreaker.OutcomeFailure, now, rules)
	require.NoError(t, err)
	assert.Equal(t, resilience.StateClosed, st.State, "1 failure in 3 recent calls")
	st, err = store.Record(ctx, "x", 0, sharedbreaker.OutcomeFailure, now, rules)
	require.NoError(t, err)
	require.Equal(t, resilience.StateOpen, st.State)
	assert.Equal(t, uint64(1), st.Generation)
	assert.Equal(t, now.Add(time.Second).UnixMilli(), st.OpenUntil.UnixMilli())

	// A late result from generation 0 changes nothing.
	st2, err := store.Record(ctx, "x", 0, sharedbreaker.OutcomeSuccess, now, rules)
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
		assert.Equal(t, resilience.StateHalfOpen, st.State)
	}
	_, ok, err = store.Acquire(ctx, "x", now, rules)
	require.NoError(t, err)
	assert.False(t, ok, "both probe slots are taken")
	_, err = store.Record(ctx, "x", st.Generation, sharedbreaker.OutcomeExcluded, now, rules)
	require.NoError(t, err)
	_, ok, err = store.Acquire(ctx, "x", now, rules)
	require.NoError(t, err)
	assert.True(t, ok, "the excluded probe's slot was given back")
	st, err = store.Record(ctx, "x", st.Generation, sharedbreaker.OutcomeSuccess, now, rules)
	require.NoError(t, err)
	assert.Equal(t, resilience.StateHalfOpen, st.State)
	st, err = store.Record(ctx, "x", st.Generation, sharedbreaker.OutcomeSuccess, now, rules)
	require.NoError(t, err)
	assert.Equal(t, resilience.StateClosed, st.State)
	assert.Equal(t, uint64(3), st.Generation)

	// Probes that never report lose their lease after Timeout.
	for range 2 {
		_, err = store.Record(ctx, "x", st.Generation, sharedbreaker.OutcomeFailure, now, rules)
		require.NoError(t, err)
	}
	now = now.Add(time.Second)
	for range 2 {
		_, ok, err = store.Acquire(ctx, "x", now, rules)
		require.NoError(t, err)
		assert.True(t, ok)
	}
	_, ok, err = store.Acquire(ctx, "x", now.Add(500*time.Millisecond), rules)
	require.NoError(t, err)
	assert.False(t, ok, "the probes' leases still hold")
	st, ok, err = store.Acquire(ctx, "x", now.Add(time.Second), rules)
	require.NoError(t, err)
	assert.True(t, ok, "lease expired")
	st, err = store.Record(ctx, "x", st.Generation, sharedbreaker.OutcomeFailure, now.Add(time.Second), rules)
	require.NoError(t, err)
	assert.Equal(t, resilience.StateOpen, st.State, "a failed probe reopens")
	loaded, err := store.Load(ctx, "x", now.Add(time.Second), rules)
	require.NoError(t, err)
	assert.Equal(t, st, loaded)

	// The window is the Buckets buckets up to now's: a failure 9.999 s
	// before (same bucket row) counts with one now, one 10 s before does
	// not.
	t0 := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for name, later := range map[string]time.Duration{"in": 9999 * time.Millisecond, "out": 10 * time.Second} {
		_, err := store.Record(ctx, name, 0, sharedbreaker.OutcomeFailure, t0, rules)
		require.NoError(t, err)
		st, err := store.Record(ctx, name, 0, sharedbreaker.OutcomeFailure, t0.Add(later), rules)
		require.NoError(t, err)
		want := map[string]resilience.State{"in": resilience.StateOpen, "out": resilience.StateClosed}[name]
		assert.Equal(t, want, st.State, "a failure %v before another", later)
	}
}

var errBoom = errors.New("boom")

func fail(context.Context) (int, error) { return 0, errBoom }
func ok(context.Context) (int, error)   { return 1, nil }

// Clock is a settable clock for [sharedbreaker.Options.Now], safe for
// concurrent use.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock that reads 2026-01-01 00:00 UTC until advanced.
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

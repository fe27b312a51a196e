package sharedbreaker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/internal/breakertest"
	"github.com/sysdesign-go/sysdesign/resilience/sharedbreaker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func must[P any](p P, err error) P {
	if err != nil {
		panic(err)
	}
	return p
}

func ok(context.Context) (int, error) { return 1, nil }

// The contract of the in-memory Store; package redisbreaker runs the same
// one on Redis.

func TestBreakerAcrossInstances(t *testing.T) {
	breakertest.SharedBreakerAcrossInstances(t, sharedbreaker.NewMemoryStore())
}

func TestStoreRules(t *testing.T) {
	breakertest.StoreRules(t, sharedbreaker.NewMemoryStore())
}

// A Breaker is a Policy: it refuses a nil function and passes fn's result
// through on success.
func TestBreakerPolicyContract(t *testing.T) {
	var p resilience.Policy[int] = must(sharedbreaker.New[int](sharedbreaker.Options{Store: sharedbreaker.NewMemoryStore(), Name: "x"}))
	_, err := p.Execute(t.Context(), nil)
	assert.ErrorIs(t, err, resilience.ErrInvalidConfig)
	v, err := p.Execute(t.Context(), func(context.Context) (int, error) { return 9, nil })
	require.NoError(t, err)
	assert.Equal(t, 9, v)
}

func TestBreakerFailsOpenWhenStoreFails(t *testing.T) {
	b := must(sharedbreaker.New[int](sharedbreaker.Options{Store: brokenStore{}, Name: "x"}))
	for range 3 {
		v, err := b.Execute(context.Background(), ok)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
	}
	st := b.Stats()
	assert.Equal(t, uint64(6), st.StoreErrors)
	assert.Equal(t, resilience.StateClosed, b.State(context.Background()))
}

type brokenStore struct{}

var errStore = errors.New("store down")

func (brokenStore) Load(context.Context, string, time.Time, sharedbreaker.Rules) (sharedbreaker.Snapshot, error) {
	return sharedbreaker.Snapshot{}, errStore
}
func (brokenStore) Acquire(context.Context, string, time.Time, sharedbreaker.Rules) (sharedbreaker.Snapshot, bool, error) {
	return sharedbreaker.Snapshot{}, false, errStore
}
func (brokenStore) Record(context.Context, string, uint64, sharedbreaker.Outcome, time.Time, sharedbreaker.Rules) (sharedbreaker.Snapshot, error) {
	return sharedbreaker.Snapshot{}, errStore
}

func TestNewBadInput(t *testing.T) {
	store := sharedbreaker.NewMemoryStore()
	type R = sharedbreaker.Rules
	for _, o := range []sharedbreaker.Options{
		{Store: store}, {Store: store, Name: "a{b}"}, {Store: store, Name: "x", Rules: R{Window: -1}}, {Store: store, Name: "x", Rules: R{Buckets: -1}},
		{Store: store, Name: "x", Rules: R{Window: time.Millisecond, Buckets: 10}}, {Store: store, Name: "x", Rules: R{MinRequests: -1}},
		{Store: store, Name: "x", Rules: R{FailureRate: 2}}, {Store: store, Name: "x", Rules: R{Timeout: -1}}, {Store: store, Name: "x", Rules: R{HalfOpenRequests: -1}},
		{Store: store, Name: "x", CacheTTL: -1}, {Store: store, Name: "x", SlowCallThreshold: -1},
		{Name: "x"}, // no store
	} {
		var err error
		require.NotPanics(t, func() { _, err = sharedbreaker.New[int](o) })
		assert.ErrorIs(t, err, resilience.ErrInvalidConfig, "%+v", o)
	}
	_, err := sharedbreaker.New[int](sharedbreaker.Options{Name: "x"})
	assert.ErrorContains(t, err, "needs a Store")
}

// A Breaker New did not make refuses calls at once with an error naming
// New; its Done and State do not panic. A zero MemoryStore works.
func TestZeroValues(t *testing.T) {
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"Execute": func() error { var b sharedbreaker.Breaker[int]; _, err := b.Execute(ctx, ok); return err },
		"Allow":   func() error { var b sharedbreaker.Breaker[int]; _, err := b.Allow(ctx); return err },
		"nil":     func() error { var b *sharedbreaker.Breaker[int]; _, err := b.Execute(ctx, ok); return err },
	} {
		var err error
		require.NotPanics(t, func() { err = call() }, name)
		require.ErrorIs(t, err, resilience.ErrInvalidConfig, name)
		assert.True(t, strings.Contains(err.Error(), "sharedbreaker.New"), "%s: %v", name, err)
	}
	var b sharedbreaker.Breaker[int]
	b.Done(ctx, 0, time.Second, nil)
	assert.Equal(t, resilience.StateClosed, b.State(ctx))
	assert.Equal(t, sharedbreaker.Stats{}, b.Stats())

	var s sharedbreaker.MemoryStore
	st, err := s.Load(ctx, "b", time.Now(), sharedbreaker.Rules{})
	require.NoError(t, err)
	assert.Equal(t, resilience.StateClosed, st.State)
}

// countingStore counts Acquire calls and records the deadline of each
// store call's context.
type countingStore struct {
	*sharedbreaker.MemoryStore
	acquires  int
	deadlines []time.Time
}

func (s *countingStore) Acquire(ctx context.Context, name string, now time.Time, r sharedbreaker.Rules) (sharedbreaker.Snapshot, bool, error) {
	s.acquires++
	d, _ := ctx.Deadline()
	s.deadlines = append(s.deadlines, d)
	return s.MemoryStore.Acquire(ctx, name, now, r)
}

// By default an instance trusts its copy of a closed state for 100 ms
// from its last answer from the store, gives each store call 100 ms, and
// reports no state change while the state stays closed.
func TestBreakerDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &countingStore{MemoryStore: sharedbreaker.NewMemoryStore()}
		var changes []resilience.StateChange
		b := must(sharedbreaker.New[int](sharedbreaker.Options{Store: store, Name: "x",
			OnStateChange: func(c resilience.StateChange) { changes = append(changes, c) }}))
		start := time.Now()
		slow := func(context.Context) (int, error) { time.Sleep(50 * time.Millisecond); return 1, nil }
		_, err := b.Execute(t.Context(), slow) // asks the store; its answer to Record comes at 50 ms
		require.NoError(t, err)
		require.Equal(t, 1, store.acquires)
		assert.Equal(t, start.Add(100*time.Millisecond), store.deadlines[0], "StoreTimeout 100 ms")
		time.Sleep(99 * time.Millisecond) // 149 ms: 99 ms after the last answer
		_, err = b.Execute(t.Context(), ok)
		require.NoError(t, err)
		assert.Equal(t, 1, store.acquires, "within CacheTTL of the last answer")
		time.Sleep(100 * time.Millisecond) // 100 ms after the last answer, at 149 ms
		_, err = b.Execute(t.Context(), ok)
		require.NoError(t, err)
		assert.Equal(t, 2, store.acquires, "CacheTTL passed")
		assert.Empty(t, changes)
	})
}

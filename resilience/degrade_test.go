package resilience

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDegraderServesStaleValue(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := must(NewLastGood[string](2))
	d, err := NewDegrader[string](store, DegraderOptions{MaxStaleness: time.Minute, Now: func() time.Time { return now }})
	require.NoError(t, err)
	fresh := func(v string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return v, nil }
	}
	down := func(context.Context) (string, error) { return "", errBoom }

	v, stale, err := d.Execute(t.Context(), "user:1", fresh("alice"))
	require.NoError(t, err)
	assert.Equal(t, "alice", v)
	assert.False(t, stale)

	now = now.Add(30 * time.Second)
	v, stale, err = d.Execute(t.Context(), "user:1", down)
	require.NoError(t, err)
	assert.Equal(t, "alice", v, "the last good value is served")
	assert.True(t, stale)

	_, _, err = d.Execute(t.Context(), "user:2", down)
	assert.ErrorIs(t, err, errBoom, "no stale value: the error")

	now = now.Add(time.Minute)
	_, _, err = d.Execute(t.Context(), "user:1", down)
	assert.ErrorIs(t, err, errBoom, "too stale")
	assert.Equal(t, DegraderStats{Calls: 4, ServedStale: 1, NoStale: 2}, d.Stats())

	// LastGood keeps at most maxKeys keys.
	for _, k := range []string{"a", "b", "c"} {
		store.PutStale(t.Context(), k, k, now)
	}
	_, _, okA := store.GetStale(t.Context(), "a")
	_, _, okC := store.GetStale(t.Context(), "c")
	assert.False(t, okA)
	assert.True(t, okC)

	_, err = NewDegrader[string](nil, DegraderOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewLastGood[int](0)
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// A read-only source (a cache that is filled elsewhere) works too.
type staleFunc func(key string) (string, time.Time, bool)

func (f staleFunc) GetStale(_ context.Context, key string) (string, time.Time, bool) { return f(key) }

func TestDegraderWithReadOnlySource(t *testing.T) {
	d, err := NewDegrader[string](staleFunc(func(k string) (string, time.Time, bool) { return "cached " + k, time.Now(), true }), DegraderOptions{})
	require.NoError(t, err)
	v, stale, err := d.Execute(t.Context(), "k", func(context.Context) (string, error) { return "", errBoom })
	require.NoError(t, err)
	assert.True(t, stale)
	assert.Equal(t, "cached k", v)
}

func TestSwitches(t *testing.T) {
	var s Switches
	recs := must(s.Register("recommendations", false))
	checkout := must(s.Register("checkout", true))
	_, err := s.Register("checkout", true)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Same(t, recs, s.Get("recommendations"))

	assert.True(t, recs.Enabled())
	s.SetDegraded(true)
	assert.False(t, recs.Enabled(), "degraded mode turns non-critical work off")
	assert.True(t, checkout.Enabled(), "critical work stays on")
	_, err = Guarded[int](recs).Execute(t.Context(), ok)
	assert.True(t, errors.Is(err, ErrDisabled))
	assert.Equal(t, uint64(1), recs.Skipped())
	s.SetDegraded(false)
	checkout.Set(false)
	assert.False(t, checkout.Enabled())
	assert.True(t, recs.Enabled())
}

package degrade_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/degrade"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

func ok(context.Context) (int, error) { return 1, nil }

func must[P any](p P, err error) P {
	if err != nil {
		panic(err)
	}
	return p
}

func TestDegraderServesStaleValue(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d, err := degrade.New(degrade.Options[string]{MaxKeys: 2, MaxStaleness: time.Minute, Now: func() time.Time { return now }})
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
	assert.Equal(t, degrade.Stats{Calls: 4, ServedStale: 1, NoStale: 2}, d.Stats())
}

// A value exactly MaxStaleness old is still served; one a nanosecond
// older is not.
func TestDegraderMaxStalenessBound(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := must(degrade.New(degrade.Options[string]{MaxStaleness: time.Minute, Now: func() time.Time { return now }}))
	_, _, err := d.Execute(t.Context(), "k", func(context.Context) (string, error) { return "v", nil })
	require.NoError(t, err)
	down := func(context.Context) (string, error) { return "", errBoom }
	now = now.Add(time.Minute)
	v, stale, err := d.Execute(t.Context(), "k", down)
	require.NoError(t, err)
	assert.True(t, stale)
	assert.Equal(t, "v", v)
	now = now.Add(time.Nanosecond)
	_, _, err = d.Execute(t.Context(), "k", down)
	assert.ErrorIs(t, err, errBoom)
}

// Without a Source, the degrader keeps at most MaxKeys keys: the least
// recently stored is dropped first.
func TestDegraderKeepsAtMostMaxKeys(t *testing.T) {
	d := must(degrade.New(degrade.Options[string]{MaxKeys: 2}))
	for _, k := range []string{"a", "b", "c"} {
		_, _, err := d.Execute(t.Context(), k, func(context.Context) (string, error) { return k, nil })
		require.NoError(t, err)
	}
	_, _, err := d.Execute(t.Context(), "a", func(context.Context) (string, error) { return "", errBoom })
	assert.ErrorIs(t, err, errBoom, "a was dropped")
	v, stale, err := d.Execute(t.Context(), "c", func(context.Context) (string, error) { return "", errBoom })
	require.NoError(t, err)
	assert.True(t, stale)
	assert.Equal(t, "c", v)

	// Storing a key again makes it the most recently stored: b, stored
	// once before c, goes first, and c keeps its new value.
	d = must(degrade.New(degrade.Options[string]{MaxKeys: 2}))
	for _, kv := range [][2]string{{"b", "b1"}, {"c", "c1"}, {"c", "c2"}, {"b", "b2"}, {"d", "d1"}} {
		_, _, err := d.Execute(t.Context(), kv[0], func(context.Context) (string, error) { return kv[1], nil })
		require.NoError(t, err)
	}
	stored := map[string]string{}
	for _, k := range []string{"b", "c", "d"} {
		if v, stale, err := d.Execute(t.Context(), k, func(context.Context) (string, error) { return "", errBoom }); err == nil {
			assert.True(t, stale)
			stored[k] = v
		}
	}
	assert.Equal(t, map[string]string{"b": "b2", "d": "d1"}, stored, "c, the least recently stored, was dropped")
}

// A read-only source (a cache that is filled elsewhere) works too.
type staleFunc func(key string) (string, time.Time, bool)

func (f staleFunc) GetStale(_ context.Context, key string) (string, time.Time, bool) { return f(key) }

func TestDegraderWithReadOnlySource(t *testing.T) {
	d, err := degrade.New(degrade.Options[string]{Source: staleFunc(func(k string) (string, time.Time, bool) { return "cached " + k, time.Now(), true })})
	require.NoError(t, err)
	v, stale, err := d.Execute(t.Context(), "k", func(context.Context) (string, error) { return "", errBoom })
	require.NoError(t, err)
	assert.True(t, stale)
	assert.Equal(t, "cached k", v)
}

// Each bad option is an error wrapping ErrInvalidConfig naming the value;
// a Degrader New did not make fails clearly.
func TestDegraderBadInput(t *testing.T) {
	src := staleFunc(func(string) (string, time.Time, bool) { return "", time.Time{}, false })
	for _, c := range []struct {
		opts degrade.Options[string]
		want string
	}{
		{degrade.Options[string]{MaxKeys: -1}, "MaxKeys must not be negative, got -1"},
		{degrade.Options[string]{Source: src, MaxKeys: 5}, "MaxKeys 5 bounds the in-memory store"},
		{degrade.Options[string]{MaxStaleness: -time.Second}, "MaxStaleness must not be negative, got -1s"},
	} {
		_, err := degrade.New(c.opts)
		require.ErrorIs(t, err, resilience.ErrInvalidConfig)
		assert.ErrorContains(t, err, c.want)
	}
	var d degrade.Degrader[int]
	var err error
	require.NotPanics(t, func() {
		_, _, err = d.Execute(t.Context(), "k", func(context.Context) (int, error) { return 0, resilience.ErrOpen })
	})
	require.ErrorIs(t, err, resilience.ErrInvalidConfig)
	assert.True(t, strings.Contains(err.Error(), "degrade.New"), err)
	_, _, err = must(degrade.New(degrade.Options[int]{})).Execute(t.Context(), "k", nil)
	assert.ErrorIs(t, err, resilience.ErrInvalidConfig)
}

func TestSwitches(t *testing.T) {
	var s degrade.Switches
	recs := must(s.Register("recommendations", false))
	checkout := must(s.Register("checkout", true))
	_, err := s.Register("checkout", true)
	assert.ErrorIs(t, err, resilience.ErrInvalidConfig)
	assert.Same(t, recs, s.Get("recommendations"))

	assert.True(t, recs.Enabled())
	s.SetDegraded(true)
	assert.False(t, recs.Enabled(), "degraded mode turns non-critical work off")
	assert.True(t, checkout.Enabled(), "critical work stays on")
	_, err = resilience.Guarded[int](recs).Execute(t.Context(), ok)
	assert.True(t, errors.Is(err, degrade.ErrDisabled))
	assert.Equal(t, uint64(1), recs.Skipped())
	s.SetDegraded(false)
	checkout.Set(false)
	assert.False(t, checkout.Enabled())
	assert.True(t, recs.Enabled())
}

// A Switch is a Guard: while on it lets every call through and pairs Enter
// with Exit.
func TestSwitchGuardContract(t *testing.T) {
	var s degrade.Switches
	var g resilience.Guard = must(s.Register("feature", false))
	for range 3 {
		p, err := g.Enter(t.Context())
		require.NoError(t, err)
		assert.Equal(t, t.Context(), p.Ctx)
		g.Exit(p, nil)
	}
}

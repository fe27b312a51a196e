package resilience

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdaptiveThrottleFollowsSREFormula(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th, err := NewAdaptiveThrottle(ThrottleOptions{K: 2, Now: func() time.Time { return now }})
	require.NoError(t, err)
	// 100 requests, 10 accepted: p = (100 - 2·10)/(100+1).
	for i := range 100 {
		require.True(t, th.AllowAt(now, 0.999), "u close to 1 is never throttled")
		th.RecordAt(now, i < 10)
	}
	st := th.Stats()
	assert.InDelta(t, 80.0/101, st.RejectProbability, 1e-9)
	assert.False(t, th.AllowAt(now, 0.5))
	assert.True(t, th.AllowAt(now, 0.9))
	// A healthy backend: accepts·K ≥ requests → never throttled.
	th2, err := NewAdaptiveThrottle(ThrottleOptions{Now: func() time.Time { return now }})
	require.NoError(t, err)
	p := Guarded[int](th2)
	for range 50 {
		_, err := p.Execute(t.Context(), ok)
		require.NoError(t, err)
	}
	assert.Zero(t, th2.Stats().RejectProbability)
	// Refusals age out of the window.
	now = now.Add(11 * time.Second)
	assert.Zero(t, th.Stats().RejectProbability)

	for _, o := range []ThrottleOptions{{K: 0.5}, {Window: -1}, {Buckets: -2}} {
		_, err := NewAdaptiveThrottle(o)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
}

func TestAdaptiveThrottleRejectsWhenBackendRefuses(t *testing.T) {
	th, err := NewAdaptiveThrottle(ThrottleOptions{Name: "api", K: 1.1, Rand: func() float64 { return 0.3 }})
	require.NoError(t, err)
	p := Guarded[int](th)
	sent := 0
	refusing := func(context.Context) (int, error) { sent++; return 0, errBoom }
	throttled := 0
	for range 100 {
		_, err := p.Execute(t.Context(), refusing)
		if errors.Is(err, ErrThrottled) {
			throttled++
		}
	}
	assert.Greater(t, throttled, 50, "most doomed requests are rejected locally")
	assert.Equal(t, 100, sent+throttled)
	assert.Equal(t, uint64(throttled), th.Stats().Throttled)
}

// An Exit without an Enter (the zero Permit) records no accept: it must not
// make a failing backend look healthy.
func TestAdaptiveThrottleExitWithoutEnter(t *testing.T) {
	th := must(NewAdaptiveThrottle(ThrottleOptions{}))
	for range 10 {
		th.Exit(Permit{}, nil)
	}
	assert.Zero(t, th.Stats().Accepts)
}

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
	// Nothing accepted: p = requests/(requests+1), 0 for the first request
	// and 0.5 from the second on, above every draw of 0.3.
	assert.Equal(t, 99, throttled, "every doomed request after the first is rejected locally")
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

// The throttle at its edges: a draw equal to the rejection probability
// passes; K spans [1, 1e6]; an error after the caller gave up is no
// verdict on the backend, and Accepted decides what counts as accepted.
func TestAdaptiveThrottleEdges(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th, err := NewAdaptiveThrottle(ThrottleOptions{K: 1, Now: func() time.Time { return now }})
	require.NoError(t, err)
	for range 3 {
		require.True(t, th.AllowAt(now, 0.999))
	}
	th.RecordAt(now, true)
	p := th.Stats().RejectProbability
	assert.InDelta(t, 0.5, p, 1e-12, "(3 − 1·1)/(3+1)")
	assert.True(t, th.AllowAt(now, p), "u = p passes")
	assert.Equal(t, ThrottleStats{Requests: 4, Accepts: 1, RejectProbability: 0.6}, th.Stats(), "(4 − 1)/(4+1)")

	for _, k := range []float64{1, 1e6} {
		_, err := NewAdaptiveThrottle(ThrottleOptions{K: k})
		assert.NoError(t, err, "K = %v", k)
	}
	_, err = NewAdaptiveThrottle(ThrottleOptions{K: 1e6 + 1})
	assert.ErrorIs(t, err, ErrInvalidConfig)

	notFound := errors.New("not found")
	th, err = NewAdaptiveThrottle(ThrottleOptions{Now: func() time.Time { return now },
		Accepted: func(err error) bool { return err == nil || errors.Is(err, notFound) }})
	require.NoError(t, err)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	// nil, not-found and a success after cancellation are accepted; an
	// error after cancellation, even not-found, is no verdict.
	for _, c := range []struct {
		ctx     context.Context
		err     error
		accepts float64
	}{{t.Context(), nil, 1}, {t.Context(), notFound, 2}, {t.Context(), errBoom, 2}, {cancelled, notFound, 2}, {cancelled, nil, 3}} {
		pm, err := th.Enter(c.ctx)
		require.NoError(t, err)
		th.Exit(pm, c.err)
		assert.Equal(t, c.accepts, th.Stats().Accepts, "%v after %v", c.err, c.ctx.Err())
	}
	assert.Equal(t, ThrottleStats{Requests: 5, Accepts: 3}, th.Stats())
}

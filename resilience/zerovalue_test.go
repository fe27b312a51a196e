package resilience

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A policy, guard or worker its constructor did not make (the zero value,
// or a nil pointer) has no configuration to run on: the call that would
// use it returns an error wrapping ErrInvalidConfig at once — it neither
// panics nor blocks, and it leaves no lock held for the next call.
func TestZeroValuesFailClearly(t *testing.T) {
	fn := func(context.Context) (int, error) { return 1, nil }
	for _, c := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Bulkhead.Acquire", func(ctx context.Context) error { var b Bulkhead; _, err := b.Acquire(ctx); return err }},
		{"Timeout", func(ctx context.Context) error { var p Timeout[int]; _, err := p.Execute(ctx, fn); return err }},
		{"Fallback", func(ctx context.Context) error { var p Fallback[int]; _, err := p.Execute(ctx, fn); return err }},
		{"Retry", func(ctx context.Context) error { var p Retry[int]; _, err := p.Execute(ctx, fn); return err }},
		{"CircuitBreaker", func(ctx context.Context) error { var p CircuitBreaker[int]; _, err := p.Execute(ctx, fn); return err }},
		{"Hedge", func(ctx context.Context) error { var p Hedge[int]; _, err := p.Execute(ctx, fn); return err }},
		{"Pipeline", func(ctx context.Context) error { var p Pipeline[int]; _, err := p.Execute(ctx, fn); return err }},
		{"nil *Pipeline", func(ctx context.Context) error { var p *Pipeline[int]; _, err := p.Execute(ctx, fn); return err }},
		{"AdaptiveThrottle.Enter", func(ctx context.Context) error { var g AdaptiveThrottle; _, err := g.Enter(ctx); return err }},
		{"LoadShedder.Enter", func(ctx context.Context) error { var g LoadShedder; _, err := g.Enter(ctx); return err }},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var err error
				require.NotPanics(t, func() { err = c.call(t.Context()) })
				require.ErrorIs(t, err, ErrInvalidConfig)
				assert.ErrorContains(t, err, "not made by New")
			})
		})
	}
}

// The zero LoadShedder's middleware answers 500 naming the mistake, not a
// 503 that would tell clients to come back later.
func TestZeroLoadShedderMiddleware(t *testing.T) {
	var l LoadShedder
	w := httptest.NewRecorder()
	l.Middleware(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	assert.Contains(t, w.Body.String(), "NewLoadShedder")
}

// The zero values of the stateful types neither panic nor hold a lock:
// their read and "At" methods see nothing.
func TestZeroValuesThatWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var th AdaptiveThrottle // its Enter refuses it; the At forms see nothing
		assert.True(t, th.AllowAt(time.Now(), 0))
		th.RecordAt(time.Now(), false)
		assert.Equal(t, ThrottleStats{}, th.Stats())

		var b Budget // grants no extra attempt
		b.RecordRequest()
		assert.False(t, b.TryExtra())
		assert.False(t, b.TryExtraAt(time.Now()))
		assert.Equal(t, BudgetStats{}, b.Stats())

		var cb CircuitBreaker[int]
		assert.Equal(t, StateClosed, cb.State())
		assert.Equal(t, BreakerStats{}, cb.Stats())
		var h Hedge[int]
		assert.Zero(t, h.HedgeDelay())
		var ls LoadShedder // admits nothing; a stray Release changes nothing
		assert.False(t, ls.TryAcquire())
		ls.Release(time.Second, true)
		assert.Equal(t, ShedderStats{Shed: 1}, ls.Stats())

		var lt latencyTracker
		lt.Record(time.Millisecond) // keeps nothing, and holds no lock after
		q95, n := lt.Quantile()
		assert.Zero(t, q95)
		assert.Zero(t, n)
	})
}

// A Budget its constructor did not make has no window to count in: Retry
// and Hedge refuse it when they are made, not on their first call.
func TestZeroBudgetRefused(t *testing.T) {
	_, err := NewRetry[int](RetryOptions{MaxAttempts: 2, Budget: &Budget{}})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "not made by NewBudget")
	_, err = NewHedge[int](HedgeOptions{Budget: &Budget{}})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A limiter its constructor did not make (the zero value) has no limit to
// enforce: every call that can return an error says so at once with
// ErrInvalidConfig — not ErrExceedsLimit, which would blame the request,
// and never a panic or a wait.
func TestZeroValuesFailClearly(t *testing.T) {
	zero := map[string]func() Limiter{
		"token-bucket": func() Limiter { return &TokenBucket{} }, "leaky-bucket": func() Limiter { return &LeakyBucket{} },
		"fixed-window": func() Limiter { return &FixedWindow{} }, "sliding-log": func() Limiter { return &SlidingLog{} },
		"sliding-window": func() Limiter { return &SlidingWindow{} }, "gcra": func() Limiter { return &GCRA{} },
		"multi": func() Limiter { return &Multi{} },
	}
	for name, mk := range zero {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				for _, call := range []func(Limiter) error{
					func(l Limiter) error { _, err := l.AllowN(t0, 1); return err },
					func(l Limiter) error { _, err := l.ReserveN(t0, 1); return err },
					func(l Limiter) error { return l.WaitN(t.Context(), 1) },
				} {
					var err error
					require.NotPanics(t, func() { err = call(mk()) })
					require.ErrorIs(t, err, ErrInvalidConfig)
					assert.NotErrorIs(t, err, ErrExceedsLimit)
					assert.ErrorContains(t, err, "not made by")
				}
				require.NotPanics(t, func() { assert.False(t, mk().Allow(), "the zero value allows nothing") })
			})
		})
	}
	var k Keyed
	require.NotPanics(t, func() {
		k.Sweep(t0)
		assert.Zero(t, k.Len())
		assert.Zero(t, k.MaxKeys())
		assert.Equal(t, Stats{}, k.Stats())
		assert.Zero(t, (&TokenBucket{}).Tokens(t0))
		assert.Equal(t, Limit{}, (&Multi{}).Limit())
	})
	for name, call := range map[string]func(ctx context.Context) error{
		"LeakyBucket.Take": func(ctx context.Context) error { var b LeakyBucket; _, err := b.Take(ctx); return err },
		"Keyed.Decide":     func(ctx context.Context) error { var k Keyed; _, err := k.Decide(ctx, "k", 1); return err },
		"Keyed.AllowN":     func(context.Context) error { var k Keyed; _, err := k.AllowN(t0, "k", 1); return err },
		"Keyed.Allow": func(context.Context) error {
			var k Keyed
			if k.Allow("k") {
				return nil
			}
			_, err := k.AllowN(t0, "k", 1)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = call(t.Context()) })
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

// The zero Middleware answers 500 naming the mistake instead of crashing
// the handler.
func TestZeroMiddleware(t *testing.T) {
	var m Middleware
	w := httptest.NewRecorder()
	require.NotPanics(t, func() {
		m.Handler(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	})
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	assert.Contains(t, w.Body.String(), "NewMiddleware")
}

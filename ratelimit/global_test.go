package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGlobalSharesOneLimitAcrossKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	tb, err := NewTokenBucket(PerSecond(3), Options{Now: clock})
	require.NoError(t, err)
	g, err := NewGlobal(tb, Options{Now: clock})
	require.NoError(t, err)
	ctx := context.Background()
	for i, key := range []string{"a", "b", "c"} {
		d, err := g.AllowN(ctx, key, 1)
		require.NoError(t, err)
		assert.True(t, d.Allowed, "event %d of 3 fits", i+1)
	}
	d, err := g.AllowN(ctx, "d", 1)
	require.NoError(t, err)
	assert.False(t, d.Allowed, "a fourth key finds the shared budget spent")
	now = now.Add(time.Second)
	d, err = g.AllowN(ctx, "a", 3)
	require.NoError(t, err)
	assert.True(t, d.Allowed, "the budget refills on the Global's clock")
	assert.Equal(t, []Limit{PerSecond(3)}, g.Limits())
}

func TestGlobalLimitsOfMulti(t *testing.T) {
	m, err := NewMulti(AlgGCRA, []Limit{PerSecond(10), PerMinute(100)}, Options{})
	require.NoError(t, err)
	g, err := NewGlobal(m, Options{})
	require.NoError(t, err)
	assert.Equal(t, []Limit{PerSecond(10), PerMinute(100)}, g.Limits())
}

func TestGlobalBadInput(t *testing.T) {
	_, err := NewGlobal(nil, Options{})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "nil")

	var zero Global
	_, err = zero.AllowN(context.Background(), "k", 1)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Nil(t, zero.Limits())
}

// A Middleware over a Global refuses the second client once the first has
// spent the shared budget, and names the one limit in its headers.
func TestGlobalMiddleware(t *testing.T) {
	tb, err := NewTokenBucket(PerMinute(1), Options{})
	require.NoError(t, err)
	g, err := NewGlobal(tb, Options{})
	require.NoError(t, err)
	mw, err := NewMiddleware(MiddlewareOptions{Limiter: g})
	require.NoError(t, err)
	h := mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	codes := []int{}
	for _, addr := range []string{"192.0.2.1:1000", "198.51.100.7:2000"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		codes = append(codes, w.Code)
		assert.Contains(t, w.Header().Get("RateLimit-Policy"), `"default";q=1;w=60`)
	}
	assert.Equal(t, []int{http.StatusOK, http.StatusTooManyRequests}, codes)
}

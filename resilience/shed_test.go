package resilience

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadShedderAIMD(t *testing.T) {
	var changes [][2]int
	l, err := NewLoadShedder(ShedderOptions{InitialLimit: 4, MaxLimit: 6, LatencyTarget: 10 * time.Millisecond,
		OnLimitChange: func(o, n int) { changes = append(changes, [2]int{o, n}) }})
	require.NoError(t, err)
	for range 4 {
		require.True(t, l.TryAcquire())
	}
	assert.False(t, l.TryAcquire(), "limit reached")
	// Fast completions while busy raise the limit by one each, up to Max.
	for range 4 {
		l.Release(time.Millisecond, false)
	}
	assert.Equal(t, 6, l.Stats().Limit)
	// A slow completion cuts it by 10%.
	require.True(t, l.TryAcquire())
	l.Release(50*time.Millisecond, false)
	assert.Equal(t, 5, l.Stats().Limit)
	st := l.Stats()
	assert.Equal(t, uint64(1), st.Shed)
	assert.Equal(t, uint64(1), st.Drops)
	assert.Equal(t, [][2]int{{4, 5}, {5, 6}, {6, 5}}, changes)

	for _, o := range []ShedderOptions{{MinLimit: -1}, {MinLimit: 5, MaxLimit: 2}, {InitialLimit: 2000, MaxLimit: 100}, {InitialLimit: -3}, {Backoff: 1.5}, {LatencyTarget: -1}} {
		_, err := NewLoadShedder(o)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
}

func TestLoadShedderMiddlewareAnswers503WithRetryAfter(t *testing.T) {
	l, err := NewLoadShedder(ShedderOptions{InitialLimit: 1, MaxLimit: 1, RetryAfter: 1500 * time.Millisecond})
	require.NoError(t, err)
	inside := make(chan struct{})
	release := make(chan struct{})
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inside <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	}))
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		done <- rec.Code
	}()
	<-inside
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "2", rec.Header().Get("Retry-After"))
	close(release)
	assert.Equal(t, http.StatusOK, <-done)
	assert.Equal(t, uint64(1), l.Stats().Shed)
}

func TestLoadShedderGradient(t *testing.T) {
	l, err := NewLoadShedder(ShedderOptions{Algorithm: ShedGradient, InitialLimit: 10})
	require.NoError(t, err)
	busy := func(latency time.Duration, n int) {
		for range n {
			for l.TryAcquire() {
			}
			l.Release(latency, false)
		}
	}
	busy(10*time.Millisecond, 50)
	grown := l.Stats().Limit
	assert.Greater(t, grown, 20, "steady latency while saturated: the limit grows by about √limit")
	busy(60*time.Millisecond, 10)
	assert.Less(t, l.Stats().Limit, grown, "latency far above its history: the limit shrinks")
	_, err = NewLoadShedder(ShedderOptions{Algorithm: ShedAlgorithm(5)})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// A Release with no request in flight, or an Exit of a permit the shedder
// did not issue, must not let one request more than the limit in.
func TestLoadShedderReleaseWithoutAcquire(t *testing.T) {
	l, err := NewLoadShedder(ShedderOptions{InitialLimit: 1, MaxLimit: 1})
	require.NoError(t, err)
	l.Release(time.Millisecond, false)
	l.Exit(Permit{}, nil)
	require.True(t, l.TryAcquire())
	assert.False(t, l.TryAcquire(), "a stray Release raised the limit")
	l.Release(time.Millisecond, false)
	assert.Equal(t, ShedderStats{Limit: 1, Admitted: 1, Shed: 1}, l.Stats())
}

// An Exit called twice with one permit, or with a copy of it, releases its
// request once: the second Exit must not end another request that is
// still in flight, which would let one more than the limit in.
func TestLoadShedderExitTwice(t *testing.T) {
	l, err := NewLoadShedder(ShedderOptions{InitialLimit: 2, MaxLimit: 2})
	require.NoError(t, err)
	ctx := t.Context()
	first, err := l.Enter(ctx)
	require.NoError(t, err)
	second, err := l.Enter(ctx)
	require.NoError(t, err)
	l.Exit(first, nil)
	copied := first
	l.Exit(first, nil)
	l.Exit(copied, nil)
	assert.Equal(t, 1, l.Stats().InFlight, "the second request is still in flight")
	third, err := l.Enter(ctx)
	require.NoError(t, err)
	_, err = l.Enter(ctx)
	require.ErrorIs(t, err, ErrShed, "two in flight at a limit of two")

	other, err := NewLoadShedder(ShedderOptions{})
	require.NoError(t, err)
	foreign, err := other.Enter(ctx)
	require.NoError(t, err)
	l.Exit(foreign, nil) // another shedder's permit: nothing to release here
	assert.Equal(t, 2, l.Stats().InFlight)
	l.Exit(second, nil)
	l.Exit(third, nil)
	assert.Zero(t, l.Stats().InFlight)
	other.Exit(foreign, nil)
	assert.Zero(t, other.Stats().InFlight)
}

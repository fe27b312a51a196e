package resilience

import (
	"context"
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
	l.Exit(copied, nil) // stale: third may hold the ticket first held
	assert.Equal(t, 2, l.Stats().InFlight, "a stale permit does not end the request that took its ticket")
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

// The zero options: a limit of 20 between 1 and 1000 (or the initial
// limit, if higher), a 100 ms target, cuts of 10 % and a Retry-After of 1 s.
func TestLoadShedderDefaults(t *testing.T) {
	l, err := NewLoadShedder(ShedderOptions{})
	require.NoError(t, err)
	assert.Equal(t, ShedderStats{Limit: 20}, l.Stats())
	for range 20 {
		require.True(t, l.TryAcquire())
	}
	assert.False(t, l.TryAcquire())
	l.Release(100*time.Millisecond, false) // on target: not a drop
	assert.Equal(t, 21, l.Stats().Limit)
	l.Release(101*time.Millisecond, false)
	assert.Equal(t, 18, l.Stats().Limit, "21 × 0.9")
	assert.Equal(t, uint64(1), l.Stats().Drops)

	rec := httptest.NewRecorder()
	one, err := NewLoadShedder(ShedderOptions{InitialLimit: 1, MaxLimit: 1})
	require.NoError(t, err)
	require.True(t, one.TryAcquire())
	one.Middleware(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))

	high, err := NewLoadShedder(ShedderOptions{InitialLimit: 1500})
	require.NoError(t, err, "MaxLimit defaults to the initial limit when it is above 1000")
	assert.Equal(t, 1500, high.Stats().Limit)

	for _, o := range []ShedderOptions{{MinLimit: 1}, {MinLimit: 5, InitialLimit: 5, MaxLimit: 5},
		{InitialLimit: 7, MinLimit: 7}, {InitialLimit: 7, MaxLimit: 7}, {Backoff: 0.99}} {
		_, err := NewLoadShedder(o)
		assert.NoError(t, err, "%+v", o)
	}
	for _, o := range []ShedderOptions{{Backoff: 1}, {Backoff: -0.5}, {RetryAfter: -time.Second}, {InitialLimit: 4, MinLimit: 5}} {
		_, err := NewLoadShedder(o)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
}

// AIMD raises the limit only while at least half of it is in flight: a
// fast completion on an idle server says nothing about its capacity.
func TestLoadShedderAIMDRaisesOnlyWhenHalfBusy(t *testing.T) {
	l, err := NewLoadShedder(ShedderOptions{InitialLimit: 10, MaxLimit: 20, LatencyTarget: 10 * time.Millisecond})
	require.NoError(t, err)
	for range 5 {
		require.True(t, l.TryAcquire())
	}
	l.Release(time.Millisecond, false) // 5 of 10 were in flight
	assert.Equal(t, 11, l.Stats().Limit)
	l.Release(time.Millisecond, false) // 4 of 11
	assert.Equal(t, 11, l.Stats().Limit)
	assert.Equal(t, ShedderStats{Limit: 11, InFlight: 3, Admitted: 5}, l.Stats())
}

// AIMD cuts once per round trip: a slow request that was already in flight
// when the limit was cut reports the same congestion and does not cut it
// again; one admitted after the cut does.
func TestLoadShedderAIMDCutsOncePerRoundTrip(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	l, err := NewLoadShedder(ShedderOptions{InitialLimit: 20, LatencyTarget: 10 * time.Millisecond,
		Now: func() time.Time { return now }})
	require.NoError(t, err)
	for range 20 {
		require.True(t, l.TryAcquire())
	}
	now = start.Add(100 * time.Millisecond)
	l.Release(50*time.Millisecond, false)
	assert.Equal(t, 18, l.Stats().Limit, "20 × 0.9")
	now = start.Add(120 * time.Millisecond)
	l.Release(50*time.Millisecond, false) // started at 70 ms, before the cut
	assert.Equal(t, 18, l.Stats().Limit)
	now = start.Add(130 * time.Millisecond)
	l.Release(30*time.Millisecond, false) // started at 100 ms, with the cut
	assert.Equal(t, 18, l.Stats().Limit)
	l.Release(20*time.Millisecond, true) // a drop, started at 110 ms: after the cut
	assert.Equal(t, 16, l.Stats().Limit, "18.0 × 0.9 = 16.2")
	assert.Equal(t, uint64(4), l.Stats().Drops, "every slow or dropped request counts, cut or not")
}

// Exit counts a request whose context expired with an error as a drop;
// one that succeeded anyway, or whose caller cancelled, is not.
func TestLoadShedderExitDeadlineIsADrop(t *testing.T) {
	l, err := NewLoadShedder(ShedderOptions{InitialLimit: 10, MaxLimit: 10})
	require.NoError(t, err)
	expired, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
	defer cancel()
	cancelled, stop := context.WithCancel(t.Context())
	stop()
	for _, c := range []struct {
		ctx   context.Context
		err   error
		drops uint64
	}{{expired, nil, 0}, {cancelled, context.Canceled, 0}, {t.Context(), errBoom, 0}, {expired, context.DeadlineExceeded, 1}} {
		p, err := l.Enter(c.ctx)
		require.NoError(t, err)
		l.Exit(p, c.err)
		assert.Equal(t, c.drops, l.Stats().Drops, "%v", c.err)
	}
	assert.Equal(t, 9, l.Stats().Limit, "the drop cut 10 by 10 %")
}

// The gradient algorithm follows its documented rule, limit ← 0.8·limit +
// 0.2·(limit·gradient + √limit) with gradient = clamp(1.5·long/sample,
// 0.5, 1), while saturated: it grows by about √limit at steady latency,
// shrinks when latency triples, shrinks on drops (a drop counts as twice
// the long-run latency), and grows again once latency falls.
func TestLoadShedderGradientTrace(t *testing.T) {
	var changes int
	l, err := NewLoadShedder(ShedderOptions{Algorithm: ShedGradient, InitialLimit: 10,
		OnLimitChange: func(int, int) { changes++ }})
	require.NoError(t, err)
	var trace []int
	step := func(latency time.Duration, dropped bool, n int) {
		for range n {
			for l.TryAcquire() {
			}
			l.Release(latency, dropped)
			trace = append(trace, l.Stats().Limit)
		}
	}
	step(10*time.Millisecond, false, 8)
	step(30*time.Millisecond, false, 4)
	step(10*time.Millisecond, true, 3)
	step(time.Millisecond, false, 4)
	assert.Equal(t, []int{10, 11, 11, 12, 13, 14, 14, 15, 14, 14, 13, 12, 12, 13, 13, 13, 14, 15, 16}, trace)
	assert.Equal(t, 12, changes)
	assert.Equal(t, uint64(3), l.Stats().Drops, "only the dropped requests: the gradient has no target")

	// Not busy (fewer than half the limit in flight): the limit holds.
	idle, err := NewLoadShedder(ShedderOptions{Algorithm: ShedGradient, InitialLimit: 10})
	require.NoError(t, err)
	for range 4 {
		require.True(t, idle.TryAcquire())
	}
	idle.Release(time.Second, false)
	assert.Equal(t, 10, idle.Stats().Limit)
	// Half in flight is busy: a sample three times the long-run latency
	// (1 s, from the first sample) halves the gradient.
	for range 2 {
		require.True(t, idle.TryAcquire())
	}
	idle.Release(3*time.Second, false)
	assert.Equal(t, 9, idle.Stats().Limit, "0.8·10 + 0.2·(10·0.5 + √10) = 9.63")
}

// Tickets are recycled one holder at a time: two requests admitted after
// a release hold tickets of their own, and each Exit ends its own request.
func TestLoadShedderRecycledTickets(t *testing.T) {
	l, err := NewLoadShedder(ShedderOptions{InitialLimit: 3, MaxLimit: 3})
	require.NoError(t, err)
	ctx := t.Context()
	a, err := l.Enter(ctx)
	require.NoError(t, err)
	l.Exit(a, nil)
	b, err := l.Enter(ctx)
	require.NoError(t, err)
	c, err := l.Enter(ctx)
	require.NoError(t, err)
	l.Exit(b, nil)
	assert.Equal(t, 1, l.Stats().InFlight)
	l.Exit(c, nil)
	assert.Zero(t, l.Stats().InFlight)
}

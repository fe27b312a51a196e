package lb

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Thresholds: three failed probes take a backend out, two passed ones bring
// it back, and the balancer follows.
func TestHealthCheckerThresholds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		b, err := New(P2C{}, backends(3), Options{OnEvent: ev.add})
		require.NoError(t, err)
		var down atomic.Bool
		var probes atomic.Int64
		h, err := NewHealthChecker(b, HealthCheckOptions{
			Interval: time.Second, Timeout: 100 * time.Millisecond,
			Probe: func(ctx context.Context, be Backend) error {
				probes.Add(1)
				if be.Addr == "10.0.0.2:80" && down.Load() {
					return errors.New("connection refused")
				}
				return nil
			},
		})
		require.NoError(t, err)
		h.Start(context.Background())
		defer h.Close(context.Background())
		synctest.Wait()
		assert.Equal(t, int64(3), probes.Load(), "a round at once")
		down.Store(true)
		time.Sleep(2500 * time.Millisecond) // probes at 1s and 2s failed: still in
		synctest.Wait()
		assert.Equal(t, StateHealthy, b.Stats().Backends[1].State)
		time.Sleep(time.Second) // the third, at 3s
		synctest.Wait()
		assert.Equal(t, StateUnhealthy, b.Stats().Backends[1].State)
		assert.Zero(t, pickN(t, b, 100)["10.0.0.2:80"])
		down.Store(false)
		time.Sleep(time.Second) // one pass at 4s: still out
		synctest.Wait()
		assert.Equal(t, StateUnhealthy, b.Stats().Backends[1].State)
		time.Sleep(time.Second) // the second, at 5s
		synctest.Wait()
		assert.Equal(t, StateHealthy, b.Stats().Backends[1].State)
		assert.Equal(t, []string{"healthy→unhealthy (health check failed)", "unhealthy→healthy (health check passed)"}, ev.states("10.0.0.2:80"))
		require.NoError(t, h.Close(context.Background()))
		n := probes.Load()
		time.Sleep(10 * time.Second)
		assert.Equal(t, n, probes.Load(), "no probes after Close")
	})
}

// Jitter spreads the rounds over [Interval, Interval+Jitter).
func TestHealthCheckerJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(RoundRobin{}, backends(1), Options{})
		require.NoError(t, err)
		var at []time.Duration
		start := time.Now()
		h, err := NewHealthChecker(b, HealthCheckOptions{Interval: time.Second, Jitter: 500 * time.Millisecond, Rand: seeded(30).Rand,
			Probe: func(context.Context, Backend) error { at = append(at, time.Since(start)); return nil }})
		require.NoError(t, err)
		h.Start(context.Background())
		time.Sleep(100 * time.Second)
		require.NoError(t, h.Close(context.Background()))
		require.Greater(t, len(at), 60)
		distinct := map[time.Duration]bool{}
		for i := 1; i < len(at); i++ {
			gap := at[i] - at[i-1]
			assert.GreaterOrEqual(t, gap, time.Second)
			assert.Less(t, gap, 1500*time.Millisecond)
			distinct[gap] = true
		}
		assert.Greater(t, len(distinct), 10, "gaps vary")
	})
}

// A probe that hangs is cut off by the timeout and counts as failed.
func TestHealthCheckerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(RoundRobin{}, backends(2), Options{})
		require.NoError(t, err)
		h, err := NewHealthChecker(b, HealthCheckOptions{Interval: time.Second, Timeout: 200 * time.Millisecond, UnhealthyThreshold: 1,
			Probe: func(ctx context.Context, be Backend) error {
				if be.Addr == "10.0.0.1:80" {
					<-ctx.Done()
					return ctx.Err()
				}
				return nil
			}})
		require.NoError(t, err)
		start := time.Now()
		h.CheckNow(context.Background())
		assert.Equal(t, 200*time.Millisecond, time.Since(start))
		assert.Equal(t, StateUnhealthy, b.Stats().Backends[0].State)
		var failing ProbeStats
		for _, s := range h.Stats() {
			if s.Addr == "10.0.0.1:80" {
				failing = s
			}
		}
		assert.ErrorIs(t, failing.LastErr, context.DeadlineExceeded)
		assert.Equal(t, 1, failing.Fails)
		assert.Equal(t, uint64(1), failing.Probes)
		h.CheckNow(context.Background())
		for _, s := range h.Stats() {
			assert.Equal(t, uint64(2), s.Probes, "every probe sent is counted: %s", s.Addr)
		}
	})
}

// A custom probe that ignores its context does not stall the checker: at
// twice the timeout it counts as failed, and Close, called while it runs,
// returns then.
func TestHealthCheckerStuckProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(RoundRobin{}, backends(2), Options{})
		require.NoError(t, err)
		release := make(chan struct{})
		defer close(release)
		h, err := NewHealthChecker(b, HealthCheckOptions{Interval: time.Second, Timeout: 100 * time.Millisecond, UnhealthyThreshold: 1,
			Probe: func(_ context.Context, be Backend) error {
				if be.Addr == "10.0.0.1:80" {
					<-release
				}
				return nil
			}})
		require.NoError(t, err)
		start := time.Now()
		h.CheckNow(context.Background())
		assert.Equal(t, 200*time.Millisecond, time.Since(start))
		assert.Equal(t, StateUnhealthy, b.Stats().Backends[0].State)
		assert.Equal(t, StateHealthy, b.Stats().Backends[1].State)
		for _, s := range h.Stats() {
			if s.Addr == "10.0.0.1:80" {
				assert.ErrorIs(t, s.LastErr, context.DeadlineExceeded)
				assert.ErrorContains(t, s.LastErr, "still running")
			}
		}

		h.Start(context.Background())
		time.Sleep(50 * time.Millisecond) // in the middle of the first round
		start = time.Now()
		require.NoError(t, h.Close(context.Background()))
		assert.Equal(t, 150*time.Millisecond, time.Since(start), "Close waits out the round, no longer")

		// A Close whose ctx ends first says so; a second Close waits for
		// the same goroutine under its own ctx.
		h.Start(context.Background())
		time.Sleep(50 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		start = time.Now()
		err = h.Close(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorContains(t, err, "probing goroutine")
		assert.Equal(t, 10*time.Millisecond, time.Since(start))
		require.NoError(t, h.Close(context.Background()))
		assert.Equal(t, 150*time.Millisecond, time.Since(start), "the second Close waits out the same round")
	})
}

// Real probes: HTTP status on a path, and TCP connect.
func TestHealthCheckerRealProbes(t *testing.T) {
	var status atomic.Int64
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tcpAddr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	b, err := New(RoundRobin{}, []Backend{{Addr: srv.URL, Weight: 1}, {Addr: srv.Listener.Addr().String(), Weight: 1}}, Options{DisablePanic: true})
	require.NoError(t, err)
	h, err := NewHealthChecker(b, HealthCheckOptions{Path: "/healthz", Timeout: time.Second, UnhealthyThreshold: 1, HealthyThreshold: 1})
	require.NoError(t, err)
	defer h.Close(context.Background())
	h.CheckNow(context.Background())
	assert.Equal(t, 2, b.Stats().InRotation)
	status.Store(503)
	h.CheckNow(context.Background())
	assert.Equal(t, 0, b.Stats().InRotation)
	for _, s := range h.Stats() {
		assert.ErrorContains(t, s.LastErr, "503")
	}
	status.Store(204)
	h.CheckNow(context.Background())
	assert.Equal(t, 2, b.Stats().InRotation)
	// Any 2xx is healthy, and nothing else.
	for _, tc := range []struct {
		code    int64
		healthy int
	}{{300, 0}, {299, 2}, {200, 2}} {
		status.Store(tc.code)
		h.CheckNow(context.Background())
		assert.Equal(t, tc.healthy, b.Stats().InRotation, "status %d", tc.code)
	}

	tb, err := New(RoundRobin{}, []Backend{{Addr: tcpAddr, Weight: 1}, {Addr: "tcp://" + tcpAddr, Weight: 1}}, Options{DisablePanic: true})
	require.NoError(t, err)
	th, err := NewHealthChecker(tb, HealthCheckOptions{UnhealthyThreshold: 1})
	require.NoError(t, err)
	defer th.Close(context.Background())
	th.CheckNow(context.Background())
	assert.Equal(t, 2, tb.Stats().InRotation)
	require.NoError(t, ln.Close())
	th.CheckNow(context.Background())
	assert.Equal(t, 0, tb.Stats().InRotation, "connection refused")
}

func TestHealthCheckerBadInput(t *testing.T) {
	b, err := New(RoundRobin{}, backends(1), Options{})
	require.NoError(t, err)
	for _, tc := range []struct {
		opts HealthCheckOptions
		msg  string
	}{
		{HealthCheckOptions{Interval: time.Second, Timeout: 2 * time.Second}, "timeout 2s is longer than the interval 1s"},
		{HealthCheckOptions{Interval: -time.Second}, "interval -1s"},
		{HealthCheckOptions{Timeout: -1}, "timeout -1ns"},
		{HealthCheckOptions{Jitter: -1}, "jitter -1ns"},
		{HealthCheckOptions{Interval: time.Second, Jitter: 2 * time.Second}, "jitter 2s is longer"},
		{HealthCheckOptions{UnhealthyThreshold: -1}, "unhealthy threshold -1"},
		{HealthCheckOptions{HealthyThreshold: -2}, "healthy threshold -2"},
		{HealthCheckOptions{Path: "healthz"}, `path "healthz"`},
	} {
		_, err := NewHealthChecker(b, tc.opts)
		assert.ErrorIs(t, err, ErrInvalidConfig)
		assert.ErrorContains(t, err, tc.msg)
	}
	_, err = NewHealthChecker(nil, HealthCheckOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	// A short interval shortens the default timeout instead of failing.
	h, err := NewHealthChecker(b, HealthCheckOptions{Interval: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, h.Close(context.Background()))
	// A jitter of a whole interval is allowed.
	h, err = NewHealthChecker(b, HealthCheckOptions{Interval: time.Second, Jitter: time.Second})
	require.NoError(t, err)
	require.NoError(t, h.Close(context.Background()))
}

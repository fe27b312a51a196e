package lb

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// returnsAtOnce runs f and fails the test if f panics or has not returned
// within a bound far above what any of these calls takes.
func returnsAtOnce(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		f()
	}()
	select {
	case p := <-done:
		if p != nil {
			t.Errorf("%s panicked: %v", what, p)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s has not returned", what)
	}
}

// The zero Balancer (made without New) answers every method at once: an
// error wrapping ErrInvalidConfig where the method returns one, empty
// figures otherwise; never a panic.
func TestZeroValueBalancer(t *testing.T) {
	b := &Balancer{}
	be := Backend{Addr: "10.0.0.1:80", Weight: 1}
	returnsAtOnce(t, "Pick", func() {
		p, err := b.Pick(context.Background(), Request{Key: "k"})
		assert.ErrorIs(t, err, ErrInvalidConfig)
		assert.Contains(t, fmt.Sprint(err), "constructor")
		p.Done(Result{})
	})
	for name, f := range map[string]func() error{
		"Add":        func() error { return b.Add(be) },
		"Update":     func() error { return b.Update([]Backend{be}) },
		"Remove":     func() error { return b.Remove(be.Addr) },
		"Drain":      func() error { return b.Drain(be.Addr) },
		"SetWeight":  func() error { return b.SetWeight(be.Addr, 2) },
		"SetHealthy": func() error { return b.SetHealthy(be.Addr, false) },
		"Follow":     func() error { return Follow(context.Background(), b, staticSource{be}) },
	} {
		returnsAtOnce(t, name, func() { assert.ErrorIs(t, f(), ErrInvalidConfig, name) })
	}
	returnsAtOnce(t, "Stats", func() { assert.Empty(t, b.Stats().Backends) })
	returnsAtOnce(t, "Backends", func() { assert.Empty(t, b.Backends()) })
}

// A Pick finished twice counts once: the second Done does nothing, so the
// in-flight count cannot go below zero nor a capacity slot be freed twice.
func TestDoneTwice(t *testing.T) {
	for _, a := range algos {
		t.Run(a.name, func(t *testing.T) {
			b, err := a.new([]Backend{{Addr: "a", Weight: 1, Capacity: 1}}, Options{Outlier: &OutlierOptions{ConsecutiveFailures: 2}})
			require.NoError(t, err)
			p, err := b.Pick(context.Background(), Request{})
			require.NoError(t, err)
			p.Done(Result{Err: errBackend})
			p.Done(Result{Err: errBackend})
			assert.Equal(t, "a", p.Addr(), "a finished Pick still names its backend")
			st := b.Stats().Backends[0]
			assert.Equal(t, int64(0), st.InFlight)
			assert.Equal(t, uint64(1), st.Failures, "one failure, not two")
			assert.Equal(t, StateHealthy, st.State, "one failure does not reach the threshold of two")
			p, err = b.Pick(context.Background(), Request{})
			require.NoError(t, err)
			_, err = b.Pick(context.Background(), Request{})
			assert.ErrorIs(t, err, ErrAtCapacity, "the second Done freed no slot")
			p.Done(Result{})
		})
	}
}

// The zero Pick (what a failed Pick returns) can be read and finished.
func TestZeroPick(t *testing.T) {
	var p Pick
	returnsAtOnce(t, "zero Pick", func() {
		assert.Empty(t, p.Addr())
		assert.Equal(t, Backend{}, p.Backend())
		p.Done(Result{Err: errBackend})
	})
}

// A zero HealthChecker, Failover or Proxy answers at once instead of
// panicking (in a goroutine of its own, for the checker, which would take
// the process down).
func TestZeroValueHelpers(t *testing.T) {
	var h HealthChecker
	returnsAtOnce(t, "HealthChecker", func() {
		h.Start(context.Background())
		h.CheckNow(context.Background())
		assert.Empty(t, h.Stats())
		assert.NoError(t, h.Close(context.Background()))
		assert.NoError(t, h.Close(context.Background()))
	})
	var f Failover
	returnsAtOnce(t, "Failover.Do", func() {
		err := f.Do(context.Background(), Request{}, func(context.Context, Backend) error { return nil })
		assert.ErrorIs(t, err, ErrInvalidConfig)
		assert.Contains(t, fmt.Sprint(err), "NewFailover")
	})
	var p Proxy
	returnsAtOnce(t, "Proxy.ServeHTTP", func() {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		assert.Equal(t, http.StatusInternalServerError, w.Code)
		assert.Contains(t, w.Body.String(), "NewProxy")
	})
}

// Failover.Do with no function is an error, not a panic.
func TestFailoverNilFunc(t *testing.T) {
	b, err := New(RoundRobin{}, backends(1), Options{})
	require.NoError(t, err)
	f, err := NewFailover(b, FailoverOptions{})
	require.NoError(t, err)
	returnsAtOnce(t, "Do(nil)", func() {
		assert.ErrorIs(t, f.Do(context.Background(), Request{}, nil), ErrInvalidConfig)
	})
	assert.Zero(t, b.Stats().Backends[0].InFlight, "no pick left open")
}

// A function that panics in Failover.Do does not keep its backend's
// in-flight slot: a backend with a capacity of one serves the next call.
func TestFailoverPanicReleasesSlot(t *testing.T) {
	b, err := New(RoundRobin{}, []Backend{{Addr: "a", Weight: 1, Capacity: 1}}, Options{})
	require.NoError(t, err)
	f, err := NewFailover(b, FailoverOptions{})
	require.NoError(t, err)
	assert.Panics(t, func() {
		_ = f.Do(context.Background(), Request{}, func(context.Context, Backend) error { panic("boom") })
	})
	s := b.Stats().Backends[0]
	assert.Zero(t, s.InFlight)
	assert.Equal(t, uint64(1), s.Failures)
	assert.NoError(t, f.Do(context.Background(), Request{}, func(context.Context, Backend) error { return nil }))
}

// A HealthChecker closed before Start, closed twice, or started again
// after Close does what it says: Close returns at once, and a Start after
// Close probes again.
func TestHealthCheckerStartCloseOrder(t *testing.T) {
	b, err := New(RoundRobin{}, backends(1), Options{})
	require.NoError(t, err)
	probed := make(chan struct{}, 16)
	h, err := NewHealthChecker(b, HealthCheckOptions{Interval: time.Hour, Probe: func(context.Context, Backend) error {
		probed <- struct{}{}
		return nil
	}})
	require.NoError(t, err)
	returnsAtOnce(t, "Close before Start", func() { assert.NoError(t, h.Close(context.Background())) })
	for range 2 {
		h.Start(context.Background())
		h.Start(context.Background()) // running: does nothing
		select {                      // the first round runs at once
		case <-probed:
		case <-time.After(5 * time.Second):
			t.Fatal("Start after Close does not probe")
		}
		returnsAtOnce(t, "Close", func() { assert.NoError(t, h.Close(context.Background())) })
		returnsAtOnce(t, "second Close", func() { assert.NoError(t, h.Close(context.Background())) })
	}
	assert.Empty(t, probed, "one round per Start")
}

// The documented defaults, and the edges of the ranges Options accepts.
func TestOptions_DefaultsAndEdges(t *testing.T) {
	s, err := Options{Outlier: &OutlierOptions{}}.settings()
	require.NoError(t, err)
	assert.Equal(t, 0.5, s.PanicThreshold)
	assert.Equal(t, 30*time.Second, s.DrainTimeout)
	assert.Equal(t, OutlierOptions{ConsecutiveFailures: 5, MinRequests: 5, Interval: 10 * time.Second,
		BaseEjectionTime: 30 * time.Second, MaxEjectionTime: 300 * time.Second, MaxEjectionPercent: 10}, s.outlier)

	s, err = Options{PanicThreshold: 1, Outlier: &OutlierOptions{BaseEjectionTime: time.Minute, MaxEjectionTime: time.Minute}}.settings()
	require.NoError(t, err, "a threshold of 1, and a maximum ejection equal to the base")
	assert.Equal(t, 1.0, s.PanicThreshold)
	assert.Equal(t, time.Minute, s.outlier.MaxEjectionTime)
}

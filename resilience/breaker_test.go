package resilience

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errBoom = errors.New("boom")

func fail(context.Context) (int, error) { return 0, errBoom }
func ok(context.Context) (int, error)   { return 1, nil }

// must unwraps a constructor's result in tests whose arguments are valid.
func must[P any](p P, err error) P {
	if err != nil {
		panic(err)
	}
	return p
}

func TestCircuitBreakerStatesAndHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu     sync.Mutex
			events []StateChange
			b      *CircuitBreaker[int]
		)
		b, err := NewCircuitBreaker[int](BreakerOptions{
			Name:    "dep",
			Timeout: time.Second,
			Trip:    must(ConsecutiveFailures(3)),
			OnStateChange: func(c StateChange) {
				_ = b.State() // would deadlock if the hook ran under the breaker's lock
				mu.Lock()
				events = append(events, c)
				mu.Unlock()
			},
		})
		require.NoError(t, err)
		ctx := context.Background()
		for range 3 {
			_, err := b.Execute(ctx, fail)
			require.ErrorIs(t, err, errBoom)
		}
		require.Equal(t, StateOpen, b.State())

		called := false
		_, err = b.Execute(ctx, func(context.Context) (int, error) { called = true; return 1, nil })
		assert.False(t, called, "an open breaker must not run the call")
		assert.ErrorIs(t, err, ErrOpen)
		assert.ErrorIs(t, err, gobreaker.ErrOpenState, "gobreaker's cause is kept")
		var pe *PolicyError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "breaker", pe.Policy)
		assert.Contains(t, err.Error(), `breaker "dep"`)

		time.Sleep(time.Second + time.Millisecond)
		assert.Equal(t, StateHalfOpen, b.State())
		v, err := b.Execute(ctx, ok)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		assert.Equal(t, StateClosed, b.State())

		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []StateChange{
			{"dep", StateClosed, StateOpen}, {"dep", StateOpen, StateHalfOpen}, {"dep", StateHalfOpen, StateClosed},
		}, events)
		st := b.Stats()
		assert.Equal(t, uint64(1), st.Rejected)
		assert.Equal(t, uint64(4), st.Calls)
		assert.Equal(t, uint64(3), st.Failures)
	})
}

func TestCircuitBreakerHalfOpenFailureReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewCircuitBreaker[int](BreakerOptions{Timeout: time.Second, Trip: must(ConsecutiveFailures(1))})
		require.NoError(t, err)
		_, _ = b.Execute(t.Context(), fail)
		time.Sleep(2 * time.Second)
		_, err = b.Execute(t.Context(), fail)
		require.ErrorIs(t, err, errBoom)
		assert.Equal(t, StateOpen, b.State())
	})
}

func TestCircuitBreakerCallerCancellationIsNotAFailure(t *testing.T) {
	b, err := NewCircuitBreaker[int](BreakerOptions{Trip: must(ConsecutiveFailures(1))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	_, err = b.Execute(ctx, func(ctx context.Context) (int, error) {
		cancel()
		<-ctx.Done()
		return 0, ctx.Err()
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, StateClosed, b.State(), "a caller giving up must not trip the breaker")
	st := b.Stats()
	assert.Equal(t, uint64(1), st.Excluded)
	assert.Equal(t, uint32(0), st.Counts.TotalFailures)

	// A context that is already done does not even count a request.
	_, err = b.Execute(ctx, ok)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, uint64(1), b.Stats().Calls)
}

func TestCircuitBreakerClassifiers(t *testing.T) {
	notFound := errors.New("not found")
	ignored := errors.New("ignored")
	b, err := NewCircuitBreaker[int](BreakerOptions{
		Trip:         must(ConsecutiveFailures(1)),
		IsSuccessful: func(err error) bool { return errors.Is(err, notFound) },
		IsExcluded:   func(err error) bool { return errors.Is(err, ignored) },
	})
	require.NoError(t, err)
	_, err = b.Execute(t.Context(), func(context.Context) (int, error) { return 0, notFound })
	assert.ErrorIs(t, err, notFound, "the caller still gets the error")
	_, _ = b.Execute(t.Context(), func(context.Context) (int, error) { return 0, ignored })
	assert.Equal(t, StateClosed, b.State())
	st := b.Stats()
	assert.Equal(t, uint64(1), st.Successes)
	assert.Equal(t, uint64(1), st.Excluded)
	_, _ = b.Execute(t.Context(), fail)
	assert.Equal(t, StateOpen, b.State())
}

func TestFailureRateOverRollingTimeWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewCircuitBreaker[int](BreakerOptions{
			Interval: 10 * time.Second, BucketPeriod: time.Second,
			Trip: must(FailureRate(0.5, 10)),
		})
		require.NoError(t, err)
		ctx := t.Context()
		// 4 failures, then they age out of the 10 s window.
		for range 4 {
			_, _ = b.Execute(ctx, fail)
		}
		time.Sleep(11 * time.Second)
		for range 6 {
			_, _ = b.Execute(ctx, ok)
		}
		_, _ = b.Execute(ctx, fail)
		assert.Equal(t, StateClosed, b.State(), "1 failure in 7 recent calls")
		// 5 more failures: 6 of 12 recent calls fail → 50%.
		for range 5 {
			_, _ = b.Execute(ctx, fail)
		}
		assert.Equal(t, StateOpen, b.State())
	})
}

func TestCountWindowAndSlowCallRate(t *testing.T) {
	w := must(NewCountWindow(CountWindowOptions{Size: 10, FailureRate: 0.5, MinCalls: 10}))
	b, err := NewCircuitBreaker[int](BreakerOptions{Trip: w})
	require.NoError(t, err)
	ctx := t.Context()
	for i := range 10 {
		if i >= 6 { // 4 failures of 10, the oldest calls succeeded
			_, _ = b.Execute(ctx, fail)
		} else {
			_, _ = b.Execute(ctx, ok)
		}
	}
	r, _, n := w.(*countWindow).rates()
	assert.InDelta(t, 0.4, r, 1e-9)
	assert.Equal(t, 10, n)
	assert.Equal(t, StateClosed, b.State())
	_, _ = b.Execute(ctx, fail) // evicts a success: 5 of the last 10
	assert.Equal(t, StateOpen, b.State())
	r, _, n = w.(*countWindow).rates()
	assert.Equal(t, 0, n, "the window resets on a state change")
	assert.Zero(t, r)

	synctest.Test(t, func(t *testing.T) {
		slow := must(NewCountWindow(CountWindowOptions{Size: 4, SlowCallRate: 0.5, MinCalls: 4}))
		b, err := NewCircuitBreaker[int](BreakerOptions{Trip: slow, SlowCallThreshold: 100 * time.Millisecond})
		require.NoError(t, err)
		sleepy := func(d time.Duration) func(context.Context) (int, error) {
			return func(context.Context) (int, error) { time.Sleep(d); return 7, nil }
		}
		for _, d := range []time.Duration{10, 200, 10} {
			v, err := b.Execute(t.Context(), sleepy(d*time.Millisecond))
			require.NoError(t, err, "a slow call still returns its result")
			assert.Equal(t, 7, v)
		}
		assert.Equal(t, StateClosed, b.State())
		_, _ = b.Execute(t.Context(), sleepy(150*time.Millisecond)) // 2 slow of 4
		assert.Equal(t, StateOpen, b.State())
		assert.Equal(t, uint64(2), b.Stats().Slow)
	})
}

// One count window may hold both rules, as resilience4j's does: it trips
// on whichever rate reaches its threshold first, and a slow call counts
// towards both.
func TestCountWindowBothRates(t *testing.T) {
	newWindow := func() TripPolicy {
		return must(NewCountWindow(CountWindowOptions{Size: 4, FailureRate: 0.75, SlowCallRate: 0.5, MinCalls: 4}))
	}
	w := newWindow()
	for _, o := range []struct{ failed, slow bool }{{true, false}, {true, false}, {false, false}, {false, false}} {
		w.Record(o.failed, o.slow)
	}
	assert.False(t, w.ReadyToTrip(Counts{}), "2 failed of 4: below 0.75, and none slow")
	w.Record(true, false) // evicts a failure: still 2 of 4
	assert.False(t, w.ReadyToTrip(Counts{}))
	w.Record(true, false) // evicts a failure: still 2 of 4
	w.Record(true, false) // evicts a success: 3 of 4
	assert.True(t, w.ReadyToTrip(Counts{}), "the failure rate reached 0.75")

	w = newWindow()
	for _, o := range []struct{ failed, slow bool }{{true, true}, {false, false}, {true, true}, {false, false}} {
		w.Record(o.failed, o.slow) // the breaker records a slow call as failed and slow
	}
	assert.True(t, w.ReadyToTrip(Counts{}), "2 slow of 4 reached the slow-call rate, 2 failed of 4 did not reach the failure rate")
	w.Reset()
	assert.False(t, w.ReadyToTrip(Counts{}), "an empty window holds fewer than MinCalls")
}

func TestCircuitBreakerConcurrentUse(t *testing.T) {
	b, err := NewCircuitBreaker[int](BreakerOptions{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if (g+i)%2 == 0 {
					_, _ = b.Execute(context.Background(), ok)
				} else {
					_, _ = b.Execute(context.Background(), fail)
				}
			}
		})
	}
	wg.Wait()
	st := b.Stats()
	assert.Equal(t, uint64(1600), st.Calls+st.Rejected)
	assert.Equal(t, st.Calls, st.Successes+st.Failures+st.Excluded)
}

func TestBreakerBadInput(t *testing.T) {
	for name, o := range map[string]BreakerOptions{
		"negative interval":     {Interval: -1},
		"negative bucket":       {Interval: time.Second, BucketPeriod: -1},
		"bucket without window": {BucketPeriod: time.Second},
		"bucket over interval":  {Interval: time.Second, BucketPeriod: 2 * time.Second},
		"negative timeout":      {Timeout: -time.Second},
		"negative slow":         {SlowCallThreshold: -time.Second},
	} {
		_, err := NewCircuitBreaker[int](o)
		assert.ErrorIs(t, err, ErrInvalidConfig, name)
		assert.Contains(t, err.Error(), "resilience: ", name)
	}
	_, err := ConsecutiveFailures(0)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	for _, r := range []float64{0, -0.1, 1.1} {
		_, err = FailureRate(r, 1)
		assert.ErrorIs(t, err, ErrInvalidConfig, "rate %v", r)
		_, err = NewCountWindow(CountWindowOptions{Size: 10, FailureRate: r, MinCalls: 1})
		assert.ErrorIs(t, err, ErrInvalidConfig, "rate %v", r)
	}
	_, err = FailureRate(0.5, 0)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewCountWindow(CountWindowOptions{Size: 0, FailureRate: 0.5, MinCalls: 1})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewCountWindow(CountWindowOptions{Size: 5, SlowCallRate: 0.5, MinCalls: 6})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "6")

	b, err := NewCircuitBreaker[int](BreakerOptions{})
	require.NoError(t, err)
	_, err = b.Execute(t.Context(), nil)
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// Half-open lets MaxRequests probes through; the rest fail fast with
// gobreaker's ErrTooManyRequests as the cause.
func TestCircuitBreakerHalfOpenLimitsProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := must(NewCircuitBreaker[int](BreakerOptions{Timeout: time.Second, Trip: must(ConsecutiveFailures(1))}))
		_, _ = b.Execute(t.Context(), fail)
		time.Sleep(2 * time.Second)
		release := make(chan struct{})
		done := make(chan error)
		go func() {
			_, err := b.Execute(t.Context(), func(context.Context) (int, error) { <-release; return 1, nil })
			done <- err
		}()
		synctest.Wait()
		_, err := b.Execute(t.Context(), ok)
		assert.ErrorIs(t, err, ErrOpen)
		assert.ErrorIs(t, err, gobreaker.ErrTooManyRequests)
		close(release)
		require.NoError(t, <-done)
		assert.Equal(t, StateClosed, b.State())
	})
}

// A slow-call threshold alone, with gobreaker's default trip rule, counts
// each call over the threshold as a failure (its caller still gets the
// result), a call of exactly the threshold as a success, and opens after
// more than five slow calls in a row.
func TestCircuitBreakerSlowCallThresholdAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewCircuitBreaker[int](BreakerOptions{SlowCallThreshold: 100 * time.Millisecond})
		require.NoError(t, err)
		sleepy := func(d time.Duration) func(context.Context) (int, error) {
			return func(context.Context) (int, error) { time.Sleep(d); return 7, nil }
		}
		v, err := b.Execute(t.Context(), sleepy(100*time.Millisecond))
		require.NoError(t, err)
		assert.Equal(t, 7, v)
		for range 6 {
			v, err := b.Execute(t.Context(), sleepy(101*time.Millisecond))
			require.NoError(t, err, "a slow call still returns its result")
			assert.Equal(t, 7, v)
		}
		st := b.Stats()
		assert.Equal(t, StateOpen, st.State)
		assert.Equal(t, uint64(7), st.Calls)
		assert.Equal(t, uint64(1), st.Successes)
		assert.Equal(t, uint64(6), st.Failures)
		assert.Equal(t, uint64(6), st.Slow)
	})
}

// The trip rules at their boundaries: n consecutive failures trip, n-1 do
// not; a failure rate trips at exactly the rate once minRequests calls
// were seen, not before; a count window trips at exactly its rate once it
// holds MinCalls outcomes, and forgets the oldest beyond Size.
func TestTripPolicyBoundaries(t *testing.T) {
	cf := must(ConsecutiveFailures(3))
	assert.False(t, cf.ReadyToTrip(Counts{ConsecutiveFailures: 2}))
	assert.True(t, cf.ReadyToTrip(Counts{ConsecutiveFailures: 3}))

	fr := must(FailureRate(0.5, 4))
	assert.False(t, fr.ReadyToTrip(Counts{TotalFailures: 3}), "3 calls, fewer than minRequests")
	assert.True(t, fr.ReadyToTrip(Counts{TotalSuccesses: 2, TotalFailures: 2}))
	assert.False(t, fr.ReadyToTrip(Counts{TotalSuccesses: 3, TotalFailures: 2}), "2 of 5")
	assert.True(t, fr.ReadyToTrip(Counts{TotalSuccesses: 1, TotalFailures: 4}))

	w := must(NewCountWindow(CountWindowOptions{Size: 3, FailureRate: 0.5, MinCalls: 2}))
	w.Record(true, false)
	assert.False(t, w.ReadyToTrip(Counts{}), "1 outcome, fewer than MinCalls")
	w.Record(false, true) // slow but not failed: no failure-rate rule counts it
	assert.True(t, w.ReadyToTrip(Counts{}), "1 failed of 2")
	w.Record(false, false)
	assert.False(t, w.ReadyToTrip(Counts{}), "1 failed of 3")
	w.Record(false, false) // the failure leaves the window
	f, s, n := w.(*countWindow).rates()
	assert.Equal(t, []float64{0, 1.0 / 3}, []float64{f, s})
	assert.Equal(t, 3, n)

	// A window with only a slow-call rate ignores failures, and trips at
	// exactly its rate.
	slow := must(NewCountWindow(CountWindowOptions{Size: 4, SlowCallRate: 0.5, MinCalls: 4}))
	for _, o := range []struct{ failed, slow bool }{{true, false}, {true, false}, {true, true}, {false, false}} {
		slow.Record(o.failed, o.slow)
	}
	assert.False(t, slow.ReadyToTrip(Counts{}), "3 failed, 1 slow of 4")
	slow.Record(false, true) // evicts a failure: 2 slow of 4
	assert.True(t, slow.ReadyToTrip(Counts{}))

	for _, ok := range []func() (TripPolicy, error){
		func() (TripPolicy, error) { return ConsecutiveFailures(1) },
		func() (TripPolicy, error) { return FailureRate(1, 1) },
		func() (TripPolicy, error) {
			return NewCountWindow(CountWindowOptions{Size: 1, FailureRate: 1, SlowCallRate: 1, MinCalls: 1})
		},
	} {
		p, err := ok()
		require.NoError(t, err)
		assert.NotNil(t, p)
	}
	for _, o := range []CountWindowOptions{{Size: 2, FailureRate: -0.1, MinCalls: 1}, {Size: 2, SlowCallRate: -0.1, MinCalls: 1},
		{Size: 2, FailureRate: 0.5}, {Size: 2, FailureRate: 1.1, MinCalls: 1}} {
		_, err := NewCountWindow(o)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
}

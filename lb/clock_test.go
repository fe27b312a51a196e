package lb

import (
	"context"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A CoarseClock reads the time once a tick, its value never runs ahead of
// the time, and Close ends its goroutine (synctest fails the test if a
// goroutine of the bubble is left).
func TestCoarseClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c, err := NewCoarseClock(time.Millisecond)
		require.NoError(t, err)
		assert.True(t, c.Now().Equal(start), "before the first tick: the time it was built")
		time.Sleep(2*time.Millisecond + time.Microsecond)
		synctest.Wait()
		assert.True(t, c.Now().Equal(start.Add(2*time.Millisecond)), "two ticks later: %v", c.Now().Sub(start))
		time.Sleep(500 * time.Microsecond)
		assert.True(t, c.Now().Equal(start.Add(2*time.Millisecond)), "between ticks: the last tick's time")
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Close(cancelled); err != nil {
			assert.ErrorIs(t, err, context.Canceled, "a Close whose ctx ended first says so")
		}
		require.NoError(t, c.Close(context.Background()), "a second Close waits for the same end")
		stopped := c.Now()
		time.Sleep(10 * time.Millisecond)
		assert.Equal(t, stopped, c.Now(), "a closed clock stands still")
	})
}

func TestCoarseClockMisuse(t *testing.T) {
	for _, tick := range []time.Duration{0, -time.Millisecond} {
		_, err := NewCoarseClock(tick)
		assert.ErrorIs(t, err, ErrInvalidConfig, "tick %v", tick)
	}
	var zero CoarseClock
	returnsAtOnce(t, "zero CoarseClock", func() {
		assert.NoError(t, zero.Close(context.Background()))
		assert.True(t, zero.Now().IsZero())
	})
	_, err := New(PeakEWMA{}, backends(1), Options{Clock: &zero})
	assert.ErrorIs(t, err, ErrInvalidConfig, "a clock not built by NewCoarseClock")
	synctest.Test(t, func(t *testing.T) {
		c, err := NewCoarseClock(time.Millisecond)
		require.NoError(t, err)
		defer func() { require.NoError(t, c.Close(context.Background())) }()
		_, err = New(PeakEWMA{}, backends(1), Options{Clock: c, Now: time.Now})
		assert.ErrorIs(t, err, ErrInvalidConfig, "two clocks")
	})
}

// Busy picks start no goroutine, whatever the algorithm: synctest fails
// the test if one is left in the bubble.
func TestPicksStartNoGoroutine(t *testing.T) {
	for _, a := range algos {
		synctest.Test(t, func(t *testing.T) {
			b, err := a.new(backends(3), Options{Outlier: &OutlierOptions{}, SlowStart: &SlowStartOptions{}})
			require.NoError(t, err)
			for range 100_000 {
				p, err := b.Pick(context.Background(), Request{})
				require.NoError(t, err)
				p.Done(Result{Latency: time.Millisecond})
			}
		})
	}
}

// Without a reported latency, peak EWMA times the request itself from
// Pick to Done on the monotonic clock; a reported latency wins.
func TestPeakEWMATimesRequestsItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(PeakEWMA{}, backends(1), Options{})
		require.NoError(t, err)
		e := b.snap.Load().active[0]
		p, err := b.Pick(context.Background(), Request{})
		require.NoError(t, err)
		time.Sleep(5 * time.Millisecond)
		p.Done(Result{})
		assert.Equal(t, 5*time.Millisecond, time.Duration(math.Float64frombits(e.ewma.Load())))
		p, err = b.Pick(context.Background(), Request{})
		require.NoError(t, err)
		p.Done(Result{Latency: 7 * time.Millisecond})
		assert.Equal(t, 7*time.Millisecond, time.Duration(math.Float64frombits(e.ewma.Load())), "the slower reported latency is the new peak")
	})
}

// A balancer on a CoarseClock reads its time: picks are stamped with the
// last tick, an ejection ends when the clock passes it, and a request the
// balancer times itself is timed to the tick.
func TestBalancerOnCoarseClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := NewCoarseClock(time.Millisecond)
		require.NoError(t, err)
		defer func() { require.NoError(t, c.Close(context.Background())) }()
		b, err := New(PeakEWMA{}, backends(1), Options{Clock: c})
		require.NoError(t, err)
		e := b.snap.Load().active[0]
		time.Sleep(3*time.Millisecond + time.Microsecond)
		synctest.Wait()
		p, err := b.Pick(context.Background(), Request{})
		require.NoError(t, err)
		assert.Equal(t, int64(3*time.Millisecond), p.start, "the pick read the last tick")
		time.Sleep(5*time.Millisecond + 500*time.Microsecond)
		synctest.Wait()
		p.Done(Result{})
		assert.Equal(t, 5*time.Millisecond, time.Duration(math.Float64frombits(e.ewma.Load())), "timed to the tick")

		rr, err := New(RoundRobin{}, backends(3), Options{Clock: c, Outlier: &OutlierOptions{ConsecutiveFailures: 1, BaseEjectionTime: 200 * time.Millisecond, MaxEjectionPercent: 50}})
		require.NoError(t, err)
		p, err = rr.Pick(context.Background(), Request{})
		require.NoError(t, err)
		p.Done(Result{Err: assert.AnError})
		assert.Equal(t, 2, rr.Stats().InRotation, "one backend ejected")
		time.Sleep(199 * time.Millisecond)
		synctest.Wait()
		assert.Equal(t, 2, rr.Stats().InRotation, "still ejected by the coarse clock")
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		assert.Equal(t, 3, rr.Stats().InRotation, "back once the clock passed the ejection's end")
	})
}

// A balancer built on a clock that has been ticking for a while stamps
// its events with the clock's time, and ends an ejection on it.
func TestBalancerOnRunningCoarseClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := NewCoarseClock(time.Millisecond)
		require.NoError(t, err)
		defer func() { require.NoError(t, c.Close(context.Background())) }()
		time.Sleep(50*time.Millisecond + time.Microsecond)
		synctest.Wait()
		var events []Event
		b, err := New(RoundRobin{}, backends(3), Options{Clock: c, OnEvent: func(e Event) { events = append(events, e) },
			Outlier: &OutlierOptions{ConsecutiveFailures: 1, BaseEjectionTime: 200 * time.Millisecond, MaxEjectionPercent: 50}})
		require.NoError(t, err)
		time.Sleep(7 * time.Millisecond)
		synctest.Wait()
		p, err := b.Pick(context.Background(), Request{})
		require.NoError(t, err)
		p.Done(Result{Err: assert.AnError})
		require.Len(t, events, 1)
		assert.Equal(t, StateEjected, events[0].To)
		assert.True(t, events[0].At.Equal(c.Now()), "ejected at %v, the clock reads %v", events[0].At, c.Now())
		time.Sleep(199 * time.Millisecond)
		synctest.Wait()
		assert.Equal(t, 2, b.Stats().InRotation, "still ejected")
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		assert.Equal(t, 3, b.Stats().InRotation, "back 200 ms after the ejection")
	})
}

// The peak EWMA jumps to a slower observation, ignores faster ones within
// a decay step and decays toward them across steps.
func TestObserveDecaysPerStep(t *testing.T) {
	const ms = float64(time.Millisecond)
	e := &endpoint{}
	ewma := func() float64 { return math.Float64frombits(e.ewma.Load()) }
	const tau = 1000.0 // steps
	e.observe(2*ms, 10, tau)
	assert.Equal(t, 2*ms, ewma(), "the first observation is the average")
	e.observe(1*ms, 10, tau)
	assert.Equal(t, 2*ms, ewma(), "a faster observation in the same step changes nothing")
	e.observe(3*ms, 10, tau)
	assert.Equal(t, 3*ms, ewma(), "a slower one is the new peak at once")
	e.observe(1*ms, 10+tau, tau)
	want := 3*ms*math.Exp(-1) + 1*ms*(1-math.Exp(-1))
	assert.InEpsilon(t, want, ewma(), 1e-9, "one decay time later the faster observation weighs 1-1/e")
	assert.InEpsilon(t, want*math.Exp(-0.5), e.latencyAt(10+tau+tau/2, tau), 1e-9, "reads decay it further")
	assert.Equal(t, want, e.latencyAt(10, tau), "a read from an earlier step does not decay it")
}

func TestDecayShift(t *testing.T) {
	for _, c := range []struct {
		tau  time.Duration
		want uint
	}{{10 * time.Second, 21}, {time.Second, 17}, {4096, 0}, {1, 0}, {0, 0}} {
		got := decayShift(c.tau)
		assert.Equal(t, c.want, got, "decay %v", c.tau)
		if c.tau >= 4096 {
			step := time.Duration(1) << got
			assert.True(t, step <= c.tau/4096 && 2*step > c.tau/4096, "decay %v: step %v", c.tau, step)
		}
	}
}

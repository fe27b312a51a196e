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

// busy picks and finishes requests on b until cond holds, for at most
// limit picks, and reports whether it held.
func busy(t *testing.T, b Balancer, limit int, cond func() bool) bool {
	t.Helper()
	for i := range limit {
		if i%256 == 0 && cond() {
			return true
		}
		p, err := b.Pick(context.Background(), Request{})
		require.NoError(t, err)
		p.Done(Result{Latency: time.Millisecond})
	}
	return cond()
}

// roughPick picks on b until a pick reads the coarse clock, finishing the
// others, and returns that pick unfinished.
func roughPick(t *testing.T, b Balancer) Pick {
	t.Helper()
	for range 10_000_000 {
		p, err := b.Pick(context.Background(), Request{})
		require.NoError(t, err)
		if p.rough {
			return p
		}
		p.Done(Result{Latency: time.Millisecond})
	}
	t.Fatal("no pick read the coarse clock")
	return Pick{}
}

// Under load a peak-EWMA balancer's picks read the coarse clock, which
// keeps time; once the load stops, its refresher stops too.
func TestCoarseClockRunsOnlyUnderLoad(t *testing.T) {
	b, err := NewPeakEWMA(backends(10), Options{})
	require.NoError(t, err)
	running := b.coarse.running.Load
	assert.False(t, running(), "an idle balancer runs no refresher")
	require.True(t, busy(t, b, 2_000_000, running), "a busy balancer starts the coarse clock")
	roughPick(t, b).Done(Result{Latency: time.Millisecond}) // picks read it while it runs
	before := b.coarse.now.Load()
	advanced := func() bool { return b.coarse.now.Load() >= before+int64(3*time.Millisecond) }
	require.True(t, busy(t, b, 10_000_000, advanced), "the coarse clock keeps time")
	assert.LessOrEqual(t, b.coarse.now.Load(), b.clock(), "the coarse clock never runs ahead")

	require.Eventually(t, func() bool { return !running() }, 5*time.Second, time.Millisecond, "the refresher stops when picks stop")
	p, err := b.Pick(context.Background(), Request{})
	require.NoError(t, err)
	p.Done(Result{Latency: time.Millisecond})
	assert.False(t, p.rough, "an idle balancer's picks read the real clock")
}

// A balancer on a given clock (a simulation's) never starts a refresher,
// and algorithms that do not read the clock never do either.
func TestCoarseClockNeedsTheDefaultClockAndALatencyAlgorithm(t *testing.T) {
	now := time.Unix(0, 0)
	sim, err := NewPeakEWMA(backends(10), Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	p2c, err := NewP2C(backends(10), Options{})
	require.NoError(t, err)
	for _, b := range []Balancer{sim, p2c} {
		busy(t, b, 100_000, func() bool { return false })
	}
	assert.False(t, sim.coarse.running.Load())
	assert.False(t, p2c.coarse.running.Load())
}

// When callers stop reporting latencies, the balancer must time requests
// itself: its picks go back to the real clock and its refresher stops.
// The request picked on the coarse clock is not measured.
func TestUnreportedLatencyReturnsToTheRealClock(t *testing.T) {
	b, err := NewPeakEWMA(backends(1), Options{})
	require.NoError(t, err)
	e := b.snap.Load().active[0]
	p := roughPick(t, b)
	before := e.ewma.Load()
	time.Sleep(5 * time.Millisecond)
	p.Done(Result{})
	assert.Equal(t, before, e.ewma.Load(), "a coarse start cannot time a request")
	assert.True(t, b.coarse.selfTimed.Load())

	p, err = b.Pick(context.Background(), Request{})
	require.NoError(t, err)
	assert.False(t, p.rough, "picks read the real clock once callers stop reporting latencies")
	time.Sleep(5 * time.Millisecond)
	p.Done(Result{})
	assert.GreaterOrEqual(t, time.Duration(math.Float64frombits(e.ewma.Load())), 5*time.Millisecond, "the slower request is the new peak")
	assert.Eventually(t, func() bool { return !b.coarse.running.Load() }, 5*time.Second, time.Millisecond, "the refresher stops")
}

// A balancer used inside a synctest bubble starts its refresher on the
// bubble's clock, and the refresher ends with the bubble.
func TestCoarseClockInsideSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewPeakEWMA(backends(3), Options{})
		require.NoError(t, err)
		time.Sleep(time.Microsecond) // a clock of 0 is a sample not yet taken
		require.True(t, busy(t, b, 100_000, b.coarse.running.Load), "time stands still in a bubble: the rate is unbounded")
		time.Sleep(coarseCheck * coarseTick * 3)
		assert.False(t, b.coarse.running.Load(), "no picks for several checks: the refresher stopped")
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

// An algorithm that reads the clock only while an ejection is pending
// runs the coarse clock only as long: once the ejected backend is back,
// the refresher stops although picks go on.
func TestCoarseClockOnlyWhileAWakeIsPending(t *testing.T) {
	b, err := NewRoundRobin(backends(3), Options{Outlier: &OutlierOptions{ConsecutiveFailures: 1, BaseEjectionTime: 200 * time.Millisecond, MaxEjectionPercent: 50}})
	require.NoError(t, err)
	p, err := b.Pick(context.Background(), Request{})
	require.NoError(t, err)
	p.Done(Result{Err: assert.AnError})
	require.True(t, b.snap.Load().hasWake, "one backend ejected")
	require.True(t, busy(t, b, 5_000_000, b.coarse.running.Load), "busy picks check the ejection's end on the coarse clock")
	// On a starved machine the refresher may also stop, and restart, for
	// want of picks while the ejection lasts; after it, picks go on, and
	// only the end of the need can stop it for good.
	over := func() bool { return !b.coarse.running.Load() && !b.snap.Load().hasWake }
	require.True(t, busy(t, b, 50_000_000, over), "the refresher stops once the ejection ended")
	assert.Equal(t, 3, b.Stats().InRotation)
}

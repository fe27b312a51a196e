package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// Processes sleep on virtual time, one at a time, in the engine's order.
func TestResilProcsSleepOnVirtualTime(t *testing.T) {
	var e sim.Engine
	r := newResilProcs(&e)
	var log []string
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"slow", 30 * time.Millisecond}, {"fast", 10 * time.Millisecond}, {"twice", 5 * time.Millisecond}} {
		r.Go(func() {
			require.NoError(t, r.Sleep(context.Background(), p.d))
			if p.name == "twice" {
				require.NoError(t, r.Sleep(context.Background(), p.d))
			}
			log = append(log, p.name+"@"+e.Now().String())
		})
	}
	start := time.Now()
	require.NoError(t, r.runAll())
	assert.Equal(t, []string{"fast@10ms", "twice@10ms", "slow@30ms"}, log, "ties in scheduling order")
	assert.Less(t, time.Since(start), time.Second, "virtual, not real, time")
}

// A virtual deadline ends a call at its virtual instant, the server keeps
// working, and contexts the standard library derives from it end with it.
func TestResilProcsDeadlines(t *testing.T) {
	var e sim.Engine
	r := newResilProcs(&e)
	var (
		callErr     error
		gaveUpAt    time.Duration
		serverDone  time.Duration
		childErr    error
		childBefore error
	)
	r.Go(func() {
		ctx, cancel := r.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		child, cancelChild := context.WithCancel(ctx)
		defer cancelChild()
		childBefore = child.Err()
		callErr = r.call(ctx, func() error {
			err := r.Sleep(context.Background(), time.Second)
			serverDone = e.Now()
			return err
		})
		gaveUpAt = e.Now()
		childErr = child.Err()
	})
	require.NoError(t, r.runAll())
	assert.ErrorIs(t, callErr, context.DeadlineExceeded)
	assert.Equal(t, 100*time.Millisecond, gaveUpAt)
	assert.Equal(t, time.Second, serverDone, "the server finishes the abandoned request")
	assert.NoError(t, childBefore)
	assert.ErrorIs(t, childErr, context.DeadlineExceeded, "derived contexts end synchronously")

	// resilience.Timeout runs on the same deadlines.
	var e2 sim.Engine
	r2 := newResilProcs(&e2)
	to, err := resilience.NewTimeoutWith[int](time.Minute, resilience.TimeoutOptions{Name: "virtual", WithTimeout: r2.WithTimeout})
	require.NoError(t, err)
	var toErr error
	var toAt time.Duration
	r2.Go(func() {
		_, toErr = to.Execute(context.Background(), func(ctx context.Context) (int, error) {
			return 0, r2.Sleep(ctx, time.Hour)
		})
		toAt = e2.Now()
	})
	start := time.Now()
	require.NoError(t, r2.runAll())
	assert.ErrorIs(t, toErr, resilience.ErrTimeout)
	assert.Equal(t, time.Minute, toAt)
	assert.Less(t, time.Since(start), time.Second)
}

// Processes still parked when the events run out are ended, and waiting on
// a context that does not run on virtual time is reported, not hung on.
func TestResilProcsEndAndMisuse(t *testing.T) {
	var e sim.Engine
	r := newResilProcs(&e)
	var ended bool
	r.Go(func() {
		ok := r.wait(context.Background(), func(func()) {}) // nobody will wake it
		ended = !ok
	})
	require.NoError(t, r.runAll())
	assert.True(t, ended)
	assert.Empty(t, r.parked)

	var e2 sim.Engine
	r2 := newResilProcs(&e2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sleepErr error
	r2.Go(func() { sleepErr = r2.Sleep(ctx, time.Second) })
	err := r2.runAll()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not end on virtual time")
	assert.True(t, errors.Is(sleepErr, errResilStopped))
}

// Circuit breakers prevent the cascade: the slowness of C reaches A's
// users without protection; timeouts bound latency; the breaker stops the
// calls to C and frees B's threads; a fallback hides the failure.
func TestResilienceCascadeClaims(t *testing.T) {
	results, err := resilCascadeAll(&lab.Env{Seed: 7, Quick: true})
	require.NoError(t, err)
	none, to, br, fb := results[0], results[1], results[2], results[3]
	assert.Equal(t, resilCascadeThreads, none.peakA, "unprotected: A's threads all held")
	assert.Greater(t, none.latency.P99, 5*time.Second)
	assert.Greater(t, none.errorRate, 0.5)
	assert.LessOrEqual(t, to.latency.P99, resilCascadeTimeoutC+10*time.Millisecond, "timeouts bound A's latency")
	assert.Positive(t, to.timeoutsBC, "the Timeout policy cut calls to C")
	assert.Less(t, float64(br.callsToC), 0.5*float64(to.callsToC), "the breaker stops most calls to C")
	assert.Positive(t, br.rejectedAB, "the breaker short-circuits")
	assert.Less(t, br.meanB, 0.7*to.meanB, "and frees B's threads")
	assert.Less(t, br.latency.P50, 5*time.Millisecond, "open: fail fast")
	assert.Less(t, fb.errorRate, 0.01, "the fallback answers")
	assert.Positive(t, fb.fallback)
	assert.Positive(t, fb.rejectedBC, "with the fallback answering, B's own breaker opens")

	// The process runtime is as deterministic as the engine.
	total, from, until := resilCascadeTimes(&lab.Env{Quick: true})
	again, err := resilCascade(&lab.Env{Seed: 7, Quick: true}, resilCascadeVariants[3], total, from, until)
	require.NoError(t, err)
	assert.Equal(t, fb, again)
}

// Jitter more than halves the calls of contending clients (AWS), and a
// retry budget keeps an outage from tripling the load.
func TestResilienceRetryStormClaims(t *testing.T) {
	env := &lab.Env{Seed: 7, Quick: true}
	points, err := resilStorm(env, []int{50}, 3)
	require.NoError(t, err)
	calls := map[resilience.Jitter]float64{}
	done := map[resilience.Jitter]time.Duration{}
	for _, p := range points {
		calls[p.jitter], done[p.jitter] = p.calls, p.done
	}
	assert.Equal(t, 50.0*51/2, calls[resilience.JitterNone], "no jitter: one winner per lock-step round")
	for _, j := range []resilience.Jitter{resilience.JitterFull, resilience.JitterEqual, resilience.JitterDecorrelated} {
		assert.Less(t, calls[j], calls[resilience.JitterNone]/2, "%v jitter halves the calls", j)
		assert.Less(t, done[j], done[resilience.JitterNone]/10, "%v jitter finishes sooner", j)
	}
	without, err := resilOutage(env, false, 200, 20*time.Second, 5*time.Second, 15*time.Second)
	require.NoError(t, err)
	with, err := resilOutage(env, true, 200, 20*time.Second, 5*time.Second, 15*time.Second)
	require.NoError(t, err)
	assert.InDelta(t, 3.0, without.amplification, 0.05, "every request makes its 3 attempts")
	assert.Zero(t, without.stats.BudgetDenied)
	assert.Less(t, with.amplification, 1.2, "the budget caps the load near 1.1×")
	assert.Greater(t, with.stats.BudgetDenied, with.stats.Retries, "the budget refused most retries")
}

// Hedging at 10 ms or at the observed p95 cuts p99.9 many times for a few
// percent more requests ("The Tail at Scale"), on real time; the budget
// caps the extra load.
func TestResilienceHedgingClaims(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real requests for several seconds")
	}
	const n = 1500
	results, err := resilHedging(t.Context(), &lab.Env{Seed: 7}, n, 2000)
	require.NoError(t, err)
	none := results[0]
	assert.Equal(t, n, none.requests)
	assert.Greater(t, none.lat.P999, 200*time.Millisecond, "the slow mode shows at p99.9")
	// The tail is judged by how many requests end in the slow mode, not by
	// the p99.9 alone: with about 15 slow requests in 1,500, the p99.9 is
	// the second slowest, which one unlucky pair (a slow hedge of a slow
	// request, or a hedge the busy machine's scheduler started late) sets.
	assert.Greater(t, none.slow, n/200, "about 1% of requests are slow without hedging")
	for _, r := range results[1:3] {
		assert.LessOrEqual(t, r.slow*5, none.slow, "%s: hedging rescues most slow requests", r.name)
		assert.Less(t, r.extra, 0.3, r.name)
		assert.Positive(t, r.wins, r.name)
	}
	assert.LessOrEqual(t, results[3].extra, 0.05+11.0/n, "the budget holds (5% + 10 per window)")
}

// Bulkheads keep the healthy dependency fast while the other is slow.
func TestResilienceBulkheadClaims(t *testing.T) {
	results, err := resilBulkheads(&lab.Env{Seed: 7}, 8*time.Second)
	require.NoError(t, err)
	queued, shared, isolated := results[0], results[1], results[2]
	assert.Greater(t, queued.healthy.P99, time.Second, "shared queued pool: healthy calls wait behind slow ones")
	assert.Greater(t, shared.healthyErrors, 0.3, "shared fail-fast bulkhead: healthy calls rejected")
	assert.Equal(t, 40, shared.slowThreads, "the slow dependency takes the whole shared bulkhead")
	assert.Less(t, isolated.healthy.P99, 100*time.Millisecond, "bulkheads: healthy calls unaffected")
	assert.Equal(t, 20, isolated.slowThreads)
	assert.Positive(t, isolated.slowShed)
	assert.Zero(t, isolated.healthyErrors)
}

// Adaptive shedding keeps goodput near capacity past saturation; without
// it goodput collapses.
func TestResilienceSheddingClaims(t *testing.T) {
	env := &lab.Env{Seed: 7}
	capacity := resilShedServers / resilShedWork.Seconds()
	none, err := resilShed(env, 2, 0, 6*time.Second)
	require.NoError(t, err)
	assert.Less(t, none.goodput, 0.2*capacity)
	for _, v := range []int{1, 2} {
		with, err := resilShed(env, 2, v, 6*time.Second)
		require.NoError(t, err)
		assert.Greater(t, with.goodput, 0.75*capacity, resilShedVariants[v])
		assert.Less(t, with.p99, resilShedTimeout, resilShedVariants[v])
		assert.Greater(t, with.rejected, 0.3, resilShedVariants[v])
		assert.True(t, with.retryAfter, "every 503 of the middleware carries Retry-After")
	}
	low, err := resilShed(env, 0.5, 1, 6*time.Second)
	require.NoError(t, err)
	assert.Zero(t, low.rejected, "below capacity nothing is shed")
}

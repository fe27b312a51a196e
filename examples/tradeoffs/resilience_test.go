package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// resilTimeout, resilience.Timeout on the virtual deadlines of sim.Procs:
// a call that would sleep an hour is cut at the timeout's minute of
// virtual time, in far less than a second of real time, with the error
// resilience.Timeout gives.
func TestResilienceTimeoutOnVirtualTime(t *testing.T) {
	var e sim.Engine
	r := sim.NewProcs(&e)
	to := &resilTimeout{r: r, name: "virtual", d: time.Minute}
	var toErr error
	var toAt time.Duration
	r.Go(func() {
		_, toErr = to.Execute(context.Background(), func(ctx context.Context) (resilUnit, error) {
			return resilUnit{}, r.Sleep(ctx, time.Hour)
		})
		toAt = e.Now()
	})
	start := time.Now()
	require.NoError(t, r.Run())
	assert.ErrorIs(t, toErr, resilience.ErrTimeout)
	assert.ErrorIs(t, toErr, context.DeadlineExceeded)
	assert.Equal(t, uint64(1), to.timeouts)
	assert.Equal(t, time.Minute, toAt)
	assert.Less(t, time.Since(start), time.Second)
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
		assert.Positive(t, r.wins, r.name)
	}
	// A hedge goes only to a request not answered within the delay: few on
	// an idle machine, more when its scheduler stretches the fast mode
	// past the delay. The observed p95 may move between the delay read
	// here and the one Execute waits, hence a little room.
	for _, r := range results[1:3] {
		assert.LessOrEqual(t, r.extra, float64(r.late)/float64(r.requests)+0.02, "%s: only requests not answered within the delay are hedged", r.name)
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

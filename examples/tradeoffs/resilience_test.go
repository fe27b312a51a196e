package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/internal/lab"
	"github.com/sysdesign-go/sysdesign/resilience"
)

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
	assert.Less(t, float64(br.callsToC), 0.5*float64(to.callsToC), "the breaker stops most calls to C")
	assert.Less(t, br.meanB, 0.7*to.meanB, "and frees B's threads")
	assert.Less(t, br.latency.P50, 5*time.Millisecond, "open: fail fast")
	assert.Less(t, fb.errorRate, 0.01, "the fallback answers")
	assert.Positive(t, fb.fallback)
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
	assert.InDelta(t, 3.0, without, 0.05, "every request makes its 3 attempts")
	assert.Less(t, with, 1.2, "the budget caps the load near 1.1×")
}

// Hedging at 10 ms or at the observed p95 cuts p99.9 by more than 10× for
// a few percent more requests ("The Tail at Scale").
func TestResilienceHedgingClaims(t *testing.T) {
	results, err := resilHedging(&lab.Env{Seed: 7}, 20_000)
	require.NoError(t, err)
	none := results[0]
	assert.Greater(t, none.lat.P999, time.Second)
	for _, r := range results[1:] {
		assert.Less(t, r.lat.P999*10, none.lat.P999, r.name)
		assert.Less(t, r.extra, 0.06, r.name)
		assert.Positive(t, r.extra, r.name)
	}
	assert.LessOrEqual(t, results[3].extra, 0.05+10.0/20_000*3, "the budget holds")
}

// Bulkheads keep the healthy dependency fast while the other is slow.
func TestResilienceBulkheadClaims(t *testing.T) {
	results, err := resilBulkheads(&lab.Env{Seed: 7}, 8*time.Second)
	require.NoError(t, err)
	shared, isolated := results[0], results[1]
	assert.Greater(t, shared.healthy.P99, time.Second, "shared pool: healthy calls wait behind slow ones")
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
	}
	low, err := resilShed(env, 0.5, 1, 6*time.Second)
	require.NoError(t, err)
	assert.Zero(t, low.rejected, "below capacity nothing is shed")
}

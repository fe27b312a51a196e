package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// The shapes the guide describes: the fixed window's double burst at the
// boundary, the sliding log's exactness, the token bucket's burst then
// rate (identical to GCRA), the leaky queue's even spacing.
func TestRateLimitShapes(t *testing.T) {
	r, err := simulateShapes(&lab.Env{Seed: 1}, 20*time.Second)
	require.NoError(t, err)
	assert.Equal(t, 20, r.boundary["fixed-window"], "fixed window passes 2× the limit across the boundary")
	assert.Equal(t, 10, r.boundary["sliding-log"])
	assert.Equal(t, 10, r.boundary["sliding-window"])
	assert.Equal(t, r.limit.Events, r.maxIn1s["sliding-log"], "the log never exceeds the limit in any 1 s")
	assert.LessOrEqual(t, r.maxIn1s["sliding-window"], r.limit.Events+r.limit.Events/10, "the counter stays within 10% in any 1 s")
	assert.Equal(t, 2*r.limit.Events, r.maxIn1s["fixed-window"])
	assert.Equal(t, r.passes["token-bucket"], r.passes["gcra"], "GCRA is the token bucket")
	assert.Equal(t, len(r.passes["leaky-bucket (meter)"]), len(r.passes["leaky-bucket (queue)"]))
	assert.Less(t, r.gapCV["leaky-bucket (queue)"], 0.25, "the queue spaces departures evenly")
	assert.Greater(t, r.gapCV["token-bucket"], 0.5)
	assert.Equal(t, 1, maxInWindow(r.passes["leaky-bucket (queue)"], 100*time.Millisecond-time.Nanosecond),
		"never two departures within one interval")
}

// Every algorithm holds the long-run rate within 2%; in the short run only
// the sliding log never exceeds the limit, the counter stays within 15%,
// and the fixed window reaches well past it.
func TestRateLimitAccuracy(t *testing.T) {
	cells, err := simulateAccuracy(&lab.Env{Seed: 1}, 60*time.Second)
	require.NoError(t, err)
	require.Len(t, cells, len(rlLoads)*6)
	for _, c := range cells {
		ratio := float64(c.admitted) / c.ideal
		switch {
		case c.load < 1:
			assert.InDelta(t, 1, ratio, 0.001, "%s at %v× admits everything", c.name, c.load)
		case c.load >= 2:
			assert.InDelta(t, 1, ratio, 0.02, "%s at %v×", c.name, c.load)
		}
		switch c.name {
		case "sliding-log":
			assert.LessOrEqual(t, c.worstWindow, 100, "%v×", c.load)
			assert.Zero(t, c.wrongAllow+c.wrongDeny)
		case "sliding-window":
			assert.LessOrEqual(t, c.worstWindow, 115, "%v×", c.load)
		case "fixed-window":
			if c.load >= 2 {
				assert.Greater(t, c.worstWindow, 120, "%v×: the boundary burst", c.load)
			}
		}
		if c.load < 1 {
			assert.Zero(t, c.wrongAllow+c.wrongDeny, "%s under the limit agrees with the exact log", c.name)
		}
	}
}

// Per-instance limits over-admit, divided ones under-admit under skew,
// one shared limit holds.
func TestRateLimitLocalVsGlobal(t *testing.T) {
	cells, err := simulateLocalVsGlobal(&lab.Env{Seed: 1}, 60*time.Second)
	require.NoError(t, err)
	get := map[string]float64{}
	for _, c := range cells {
		get[c.split+"|"+c.deploy] = c.ratio
	}
	b, s := rlSplits[0].name, rlSplits[1].name
	full, div, glob := rlDeploys[0].name, rlDeploys[1].name, rlDeploys[2].name
	assert.InDelta(t, 2.0, get[b+"|"+full], 0.1, "balanced, full local limits: all 200/s pass")
	assert.InDelta(t, 1.6, get[s+"|"+full], 0.1, "skewed: 100 + 3×20")
	assert.InDelta(t, 1.0, get[b+"|"+div], 0.08)
	assert.InDelta(t, 0.85, get[s+"|"+div], 0.15, "skewed, divided: 25 + 3×~20")
	assert.InDelta(t, 1.0, get[b+"|"+glob], 0.02)
	assert.InDelta(t, 1.0, get[s+"|"+glob], 0.02)
}

// The sliding log's memory grows with the events a key logs, up to its
// limit; the others' does not.
func TestRateLimitMemory(t *testing.T) {
	cells, quietLog, err := measureMemory(2000)
	require.NoError(t, err)
	by := map[string]map[int]float64{}
	for _, c := range cells {
		if by[c.name] == nil {
			by[c.name] = map[int]float64{}
		}
		by[c.name][c.events] = c.perKey
	}
	assert.Greater(t, by["sliding-log"][1000], 7500.0, "8 B per event")
	assert.Greater(t, by["sliding-log"][1000], 20*by["gcra"][1000])
	assert.Less(t, quietLog, by["sliding-log"][10], "a 1000/min log with one event costs less than a 10/min one with ten")
	for _, name := range []string{"gcra", "token-bucket", "fixed-window", "sliding-window"} {
		assert.InDelta(t, by[name][10], by[name][1000], 32, name)
		assert.Less(t, by[name][1000], 400.0, name)
	}
}

// Through the real Redis, 4 instances admit the global limit; local limits
// over-admit. Skips when no Redis answers, unless CI or
// SYSDESIGN_REQUIRE_REDIS says Redis must be there.
func TestRateLimitRedisGlobal(t *testing.T) {
	o, err := runRedisGlobal(context.Background(), time.Second)
	require.NoError(t, err)
	if o.skipped != "" {
		if redistest.Required() {
			t.Fatalf("%s; CI or SYSDESIGN_REQUIRE_REDIS is set, so this test may not skip", o.skipped)
		}
		t.Skip(o.skipped)
	}
	ideal := float64(o.limitPerSecond)*o.duration.Seconds() + float64(o.burst)
	assert.InDelta(t, 1.0, float64(o.redisAdmitted)/ideal, 0.1)
	assert.Greater(t, float64(o.localAdmitted)/ideal, 1.3)
	assert.Zero(t, o.redisErrors)
}

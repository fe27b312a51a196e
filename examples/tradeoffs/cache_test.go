package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// W-TinyLFU stays within 2 points of the best policy on static and scan
// workloads (3.5 on the fast-shifting one), and well ahead of LRU when scans
// run through the cache.
func TestCachePoliciesTinyLFUClaims(t *testing.T) {
	env := &lab.Env{Seed: 3, Quick: true}
	points, sizes, oracles, err := cachePolicyRun(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, points, 5*len(sizes)*len(cache.Policies))
	type cell struct {
		wl   string
		size int
	}
	best, tiny, lru := map[cell]float64{}, map[cell]float64{}, map[cell]float64{}
	for _, p := range points {
		c := cell{p.workload, p.size}
		best[c] = max(best[c], p.hitRatio)
		switch p.policy {
		case cache.TinyLFU:
			tiny[c] = p.hitRatio
		case cache.LRU:
			lru[c] = p.hitRatio
		}
		if o := oracles[p.workload]; o != nil {
			assert.LessOrEqual(t, p.hitRatio, o(p.size)+0.02, "%v on %s size %d beats the top-N oracle", p.policy, p.workload, p.size)
		}
	}
	for c, b := range best {
		bar := 0.02
		if c.wl == "shifting zipf 1.0" {
			bar = 0.035 // see the experiment's note: the bar is not met here
		}
		assert.GreaterOrEqual(t, tiny[c], b-bar, "tinylfu close to the best on %s size %d", c.wl, c.size)
		if c.wl == "zipf 1.0 + scans" {
			assert.GreaterOrEqual(t, tiny[c]-lru[c], 0.05, "tinylfu ahead of lru under scans, size %d", c.size)
		}
	}
}

func TestCacheStampedeClaims(t *testing.T) {
	rows, err := cacheStampedeRun(context.Background(), 200, 2*time.Millisecond)
	require.NoError(t, err)
	off, on := rows[0], rows[1]
	assert.Equal(t, int64(1), on.calls, "one load with protection")
	assert.Greater(t, off.calls, int64(8), "a stampede without it")
	assert.Less(t, on.lat.P99, off.lat.P99)
}

func TestCacheWriteBehindClaims(t *testing.T) {
	rows, err := cacheWriteRun(context.Background(), &lab.Env{Seed: 1}, 800, 8)
	require.NoError(t, err)
	wt, wb := rows[0], rows[1]
	assert.Equal(t, int64(800), wt.sourceWrites, "write-through writes every write")
	assert.Less(t, wb.sourceWrites, wt.sourceWrites, "coalescing")
	assert.Less(t, wb.sourceCalls, wt.sourceCalls/10, "batching")
	assert.Less(t, wb.lat.P50, wt.lat.P50, "write-behind acknowledges faster")
	assert.Zero(t, wt.maxAtRisk)
	assert.Positive(t, wb.maxAtRisk, "write-behind holds acknowledged writes not yet in the source")
	assert.Zero(t, wb.lostAfterStop, "Close drains")
}

func TestCacheRefreshAheadClaims(t *testing.T) {
	rows, err := cacheRefreshRun(context.Background(), &lab.Env{Seed: 1}, 500*time.Millisecond, 100*time.Millisecond, 10*time.Millisecond, 10)
	require.NoError(t, err)
	plain := rows[0]
	assert.Greater(t, plain.warmMisses, int64(10), "plain expiry keeps missing")
	for _, r := range rows[1:] {
		assert.Less(t, r.warmMisses*5, plain.warmMisses, "%s: far fewer misses after warm-up", r.name)
		assert.Greater(t, r.loads, int64(0))
	}
}

// Against the real Redis when reachable; otherwise the experiment returns a
// table that says it was skipped, not an error — and the test fails when CI
// or SYSDESIGN_REQUIRE_REDIS says Redis must be there.
func TestCacheL1L2(t *testing.T) {
	res, err := runCacheL1L2(context.Background(), &lab.Env{Seed: 1, Quick: true})
	require.NoError(t, err)
	require.Len(t, res.Tables, 1)
	tb := res.Tables[0]
	if tb.Rows[0][0] == "skipped" {
		assert.Contains(t, tb.Rows[0][1], "no Redis")
		require.False(t, redistest.Required(), "%s; CI or SYSDESIGN_REQUIRE_REDIS is set, so this test may not skip", tb.Rows[0][1])
		return
	}
	require.Len(t, tb.Rows, 2)
	assert.Contains(t, res.Notes[0], "fewer")
}

package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

// Modulo moves almost every key; jump and rendezvous move the ideal
// 1/(n+1) within 5%, the 1,000-vnode ring within 10% at this sample size.
func TestShardMovementClaims(t *testing.T) {
	rows, err := shardMovement(context.Background(), shardKeys(50_000), []int{10}, &lab.Progress{})
	require.NoError(t, err)
	got := map[string]movementRow{}
	for _, r := range rows {
		got[r.algo] = r
	}
	require.Len(t, got, len(shardAlgos))
	assert.Greater(t, got["modulo"].addMoved, 0.85, "modulo moves ≈ n/(n+1)")
	assert.Greater(t, got["modulo"].delMoved, 0.85)
	for _, algo := range []string{"jump", "rendezvous"} {
		assert.InDelta(t, 1, got[algo].addRatio, 0.05, "%s add", algo)
		assert.InDelta(t, 1, got[algo].delRatio, 0.05, "%s remove", algo)
	}
	assert.InDelta(t, 1, got["ring, 1000 vnodes"].addRatio, 0.10)
	assert.InDelta(t, 1, got["ring, 1000 vnodes"].delRatio, 0.10)
	for algo, r := range got {
		if algo != "modulo" {
			assert.Less(t, r.addRatio, 2.0, "%s: consistent placements move a small multiple of the ideal", algo)
		}
	}
}

// More virtual nodes, better balance; 1,000 per shard reach max/mean ≤ 1.10.
func TestShardBalanceClaims(t *testing.T) {
	pts, err := shardBalance(context.Background(), shardKeys(100_000), []int{10}, &lab.Progress{})
	require.NoError(t, err)
	var ring []float64
	byAlgo := map[string]float64{}
	for _, p := range pts {
		if p.algo == "ring" {
			ring = append(ring, p.maxOverMean)
		} else {
			byAlgo[p.algo] = p.maxOverMean
		}
	}
	require.Len(t, ring, len(balanceVnodes))
	for i := 1; i < len(ring); i++ {
		assert.Less(t, ring[i], ring[i-1], "max/mean falls as vnodes grow: %v", ring)
	}
	assert.Greater(t, ring[0], 2.0, "one point per shard is badly unbalanced")
	assert.LessOrEqual(t, ring[len(ring)-1], 1.10)
	for _, algo := range []string{"jump", "rendezvous", "maglev", "bounded c=1.05"} {
		assert.LessOrEqual(t, byAlgo[algo], 1.10, algo)
	}
}

// Range sharding puts every time-ordered write on one shard; hashing
// spreads them, but scatters range queries.
func TestShardHotspotClaims(t *testing.T) {
	env := &lab.Env{Seed: 7}
	r, err := shardHotspot(env, 20_000)
	require.NoError(t, err)
	for w := range r.windows {
		assert.Equal(t, 1.0, r.rangeMaxShare[w], "window %d", w)
		assert.Less(t, r.hashMaxShare[w], 0.2, "window %d", w)
	}
	assert.Equal(t, 1.0, r.hotAfterSplit, "splitting moves the hot spot, it does not remove it")
	assert.NotEmpty(t, r.detected)
	assert.Less(t, r.rangeScanHit, 1.5)
	assert.Equal(t, 8.0, r.hashScanHit)

	again, err := shardHotspot(&lab.Env{Seed: 7}, 20_000)
	require.NoError(t, err)
	assert.Equal(t, r, again, "same seed, same numbers")
}

// The real Directory and CachedDirectory behind a service with real round
// trips: the cache removes lookup overhead and rides out part of an outage.
// Timings are wall-clock, so the checks leave room for a loaded machine.
func TestShardDirectoryClaims(t *testing.T) {
	rows, meter, err := shardDirectory(context.Background(), &lab.Env{Seed: 3}, 1_000, 4_000)
	require.NoError(t, err)
	require.Len(t, rows, 5)
	for _, r := range rows {
		t.Logf("%+v", r)
	}
	assert.GreaterOrEqual(t, meter.late(), time.Duration(0), "a timer never fires early")
	assert.Positive(t, meter.waits.Load())
	local, no, small, big, stale := rows[0], rows[1], rows[2], rows[3], rows[4]
	for _, r := range rows {
		assert.GreaterOrEqual(t, r.lookups, int64(4_000), r.name)
		assert.Zero(t, r.failedOutsideOutage, "%s: nothing fails while the service is up", r.name)
	}
	assert.Zero(t, local.callsPerLookup, "the in-process table does not depend on a service")
	assert.Less(t, local.lat.P50, 100*time.Microsecond, "an in-process lookup costs no round trip")

	assert.Equal(t, 1.0, no.failedDuringOutage, "no cache: the directory is a single point of failure")
	assert.Equal(t, 1.0, no.callsPerLookup, "no cache: every lookup is a directory call")
	assert.GreaterOrEqual(t, no.lat.P50, directoryRTT*8/10, "every uncached lookup waits for the round trip")

	assert.Greater(t, big.hitRate, small.hitRate)
	assert.Positive(t, small.hitRate)
	assert.Less(t, big.lat.Min, 100*time.Microsecond, "a cache hit answers in process")
	assert.Less(t, small.lat.Mean, no.lat.Mean, "a cache removes lookup overhead")
	assert.Less(t, big.lat.Mean, small.lat.Mean)
	assert.Less(t, big.callsPerLookup, 0.8, "the cache takes load off the directory")
	assert.Less(t, stale.failedDuringOutage, big.failedDuringOutage, "serving stale entries rides out more of the outage")
	assert.Greater(t, stale.failedDuringOutage, 0.0, "keys not in the cache still fail")
	assert.Less(t, big.failedDuringOutage, 1.0, "fresh cache entries still answer")
}

// The real Router's scatter-gather over stores that wait for real: fan-out
// meets the slow tail about as 1−(1−p)^N predicts, the deadline bounds the
// query, a single get is unaffected. Wall-clock, with room for a loaded
// machine.
func TestShardScatterClaims(t *testing.T) {
	rows, meter, err := shardScatter(context.Background(), &lab.Env{Seed: 5}, 300)
	require.NoError(t, err)
	require.Len(t, rows, 3)
	for _, r := range rows {
		t.Logf("%+v", r)
	}
	assert.GreaterOrEqual(t, meter.late(), time.Duration(0), "a timer never fires early")
	assert.Positive(t, meter.waits.Load())
	for i, r := range rows {
		// Slow calls outlast the deadline, so a query is partial when it
		// meets one; a loaded machine adds some late fast calls.
		assert.Greater(t, r.partial, r.theory-0.08, "%d shards: partial share near 1−(1−p)^N", r.shards)
		assert.Less(t, r.partial, r.theory+0.2, "%d shards: partial share near 1−(1−p)^N", r.shards)
		assert.GreaterOrEqual(t, r.get.P50, scatterBase*8/10, "%d shards: a get waits for one shard call", r.shards)
		assert.Less(t, r.get.P50, scatterDeadline/2, "%d shards", r.shards)
		assert.Greater(t, r.degraded.P50, scatterDegraded*8/10, "%d shards: one degraded shard sets the p50", r.shards)
		if i > 0 {
			assert.Greater(t, r.partial, rows[i-1].partial, "wider fan-out meets the slow tail more often")
		}
	}
	last := rows[len(rows)-1]
	assert.Greater(t, last.scatter.P90, scatterDeadline*8/10, "at 64 shards the slowest decile waits for the deadline")
	// A query that waited out a slow call takes at least scatterSlow plus
	// the timers' lateness; one the deadline cut takes far less. The bound
	// allows a loaded machine's average lateness and still tells the two
	// apart.
	assert.Less(t, last.scatter.P90, scatterSlow*8/10+meter.late(), "the deadline cuts the slow calls short (timers %v late on average)", meter.late())
	assert.Less(t, last.get.P90, last.scatter.P90/2, "a single-shard get does not wait")
}

// The router-overhead experiment runs the real Router; its timings are
// wall-clock, so only their presence and the results' shape are checked.
func TestShardRouterOverheadRuns(t *testing.T) {
	rows, err := shardRouterOverhead(context.Background(), 500, 5)
	require.NoError(t, err)
	require.Len(t, rows, 3)
	for _, r := range rows {
		assert.Positive(t, r.get)
		assert.Positive(t, r.scan)
		assert.Positive(t, r.topN)
		assert.Positive(t, r.count)
	}
}

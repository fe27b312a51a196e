package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/internal/lab"
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

func TestShardDirectoryClaims(t *testing.T) {
	rows, err := shardDirectory(context.Background(), &lab.Env{Seed: 3}, 10_000, 30_000)
	require.NoError(t, err)
	require.Len(t, rows, 4)
	no, small, big, stale := rows[0], rows[1], rows[2], rows[3]
	assert.Equal(t, 1.0, no.failedDuringOutage, "no cache: the directory is a single point of failure")
	assert.Zero(t, no.failedOutsideOutage)
	assert.Greater(t, big.hitRate, small.hitRate)
	assert.Less(t, big.lat.Mean, small.lat.Mean)
	assert.Less(t, small.lat.Mean, no.lat.Mean, "a cache removes lookup overhead")
	assert.Less(t, big.sourcePerSec, no.sourcePerSec/2)
	assert.Less(t, stale.failedDuringOutage, big.failedDuringOutage, "serving stale entries rides out more of the outage")
	assert.Greater(t, stale.failedDuringOutage, 0.0, "keys not in the cache still fail")
}

// Fan-out meets the slow tail as 1−(1−p)^N predicts; a single get does not.
func TestShardScatterClaims(t *testing.T) {
	rows, err := shardScatter(context.Background(), &lab.Env{Seed: 5}, 5_000)
	require.NoError(t, err)
	require.Len(t, rows, 3)
	for i, r := range rows {
		assert.InDelta(t, r.theory, r.slowShare, 0.02, "%d shards", r.shards)
		assert.InDelta(t, float64(time.Millisecond), float64(r.get.P50), float64(100*time.Microsecond), "%d shards", r.shards)
		assert.LessOrEqual(t, r.scatter.P99, scatterDeadline*101/100, "the deadline bounds the query (histogram precision 0.1%)")
		assert.Greater(t, r.degraded.P50, 9*time.Millisecond, "one degraded shard sets the p50")
		if i > 0 {
			assert.Greater(t, r.scatter.P50, rows[i-1].scatter.P50, "wider fan-out, slower median")
			assert.Greater(t, r.slowShare, rows[i-1].slowShare)
		}
	}
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

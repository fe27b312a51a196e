package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

var lbEnv = &lab.Env{Seed: 1, Quick: true}

// Round robin ignores capacity: at 70% load the slow backends saturate and
// its p99 is many times weighted round robin's; the queue-aware algorithms
// beat the static weights.
func TestLBCapacityClaims(t *testing.T) {
	points, err := lbCapacityAll(context.Background(), lbEnv, []float64{0.3, 0.7}, 5000)
	require.NoError(t, err)
	get := func(a lbAlgo, rho float64) lbCapacityPoint {
		for _, p := range points {
			if p.algo == a.name && p.rho == rho {
				return p
			}
		}
		t.Fatalf("no point for %s at %v", a.name, rho)
		return lbCapacityPoint{}
	}
	rr, wrr, edf := get(lbRoundRobin, 0.7), get(lbSmoothWRR, 0.7), get(lbEDF, 0.7)
	assert.Greater(t, rr.sum.P99, 10*wrr.sum.P99, "round robin p99 %v vs weighted %v", rr.sum.P99, wrr.sum.P99)
	assert.Greater(t, rr.backlog, 100, "round robin's slow queues grow without bound")
	assert.Less(t, wrr.backlog, 30)
	assert.InDelta(t, 0.25, rr.share[0], 0.005, "equal shares whatever the capacity")
	assert.InDelta(t, 4.0/7, wrr.share[3], 0.005, "weights 1,1,1,4")
	assert.InDelta(t, 4.0/7, edf.share[3], 0.005)
	assert.Greater(t, rr.util[0], 0.9, "the slow backends are saturated")
	for _, a := range []lbAlgo{lbLeastConn, lbWLeastConn} {
		assert.Less(t, get(a, 0.7).sum.P99, wrr.sum.P99, "%s adapts to load", a.name)
	}
	// At low load every algorithm is stable.
	for _, a := range lbCapacityAlgos {
		assert.Less(t, get(a, 0.3).backlog, 20, a.name)
	}
}

func TestLBLongRequestClaims(t *testing.T) {
	points, err := lbLongAll(context.Background(), lbEnv, 8_000)
	require.NoError(t, err)
	rr, lc, p2c := points[0], points[2], points[3]
	require.Equal(t, lbLeastConn.name, lc.algo)
	assert.Greater(t, rr.shortDelayedShare, 10*lc.shortDelayedShare, "short requests stuck behind long ones: rr %v, lc %v", rr.shortDelayedShare, lc.shortDelayedShare)
	assert.Less(t, lc.short.P99, 50*time.Millisecond)
	assert.Less(t, p2c.shortDelayedShare, rr.shortDelayedShare/2)
}

func TestLBIPHashClaims(t *testing.T) {
	points, err := lbHashAll(lbEnv, 5_000)
	require.NoError(t, err)
	find := func(a lbAlgo, w string) lbHashPoint {
		for _, p := range points {
			if p.algo == a.name && p.workload == w {
				return p
			}
		}
		t.Fatalf("no point for %s on %s", a.name, w)
		return lbHashPoint{}
	}
	const uniform, clustered = "uniform clients", "90% of clients in 5 subnets"
	assert.Less(t, find(lbIPHash, uniform).maxOverMean, 1.2)
	assert.Greater(t, find(lbIPHash, clustered).maxOverMean, 2.5, "clustered IPs pile up")
	assert.Less(t, find(lbRingHash, clustered).maxOverMean, 1.4)
	assert.Less(t, find(lbMaglev, clustered).maxOverMean, 1.3)
	assert.Greater(t, find(lbIPHash, uniform).moved, 0.6, "modulo remaps most clients")
	assert.Less(t, find(lbRingHash, uniform).moved, 0.01)
	assert.Less(t, find(lbMaglev, uniform).moved, 0.02)
}

func TestLBHealthClaims(t *testing.T) {
	points, _, _, err := lbHealthAll(context.Background(), lbEnv)
	require.NoError(t, err)
	none, active, passive, both := points[0], points[1], points[2], points[3]
	assert.Greater(t, none.errorRate, 0.15, "no checks: the failing backend keeps its share")
	assert.Less(t, active.errors, none.errors/3)
	assert.Less(t, passive.errors, active.errors/10, "passive ejection reacts within five failures")
	assert.LessOrEqual(t, both.errors, passive.errors)
	assert.Equal(t, time.Duration(-1), none.detect, "errors never stop")
	assert.Less(t, active.detect, 8*time.Second, "three probes at 2 s")
	assert.Less(t, both.detect, time.Second)
	assert.Less(t, active.returnAfter, 5*time.Second, "two passed probes bring it back")
	assert.Greater(t, passive.returnAfter, active.returnAfter, "passive waits for the ejection to expire")
	assert.Positive(t, active.probes)
	assert.Positive(t, passive.ejections)
}

func TestLBGeoClaims(t *testing.T) {
	points, err := lbGeoAll(context.Background(), lbEnv, 4500)
	require.NoError(t, err)
	geo, rr := points[0], points[1]
	assert.Less(t, geo.normal.P50*3, rr.normal.P50, "nearest region: %v vs %v", geo.normal.P50, rr.normal.P50)
	assert.Less(t, geo.crossRegionRequests, 0.2)
	assert.Greater(t, rr.crossRegionRequests, 0.6)
	assert.Greater(t, geo.euFailed.P50, 90*time.Millisecond, "eu users spill to us")
	assert.Less(t, geo.euFailed.P50, rr.euFailed.P50)
	assert.Zero(t, geo.errors)
}

// The published ordering of Linkerd's experiment: round robin degrades
// above p95 (success ~95%), least loaded above p99 (~99%), peak EWMA
// least.
func TestLBLinkerdClaims(t *testing.T) {
	points, err := lbLinkerdAll(context.Background(), lbEnv)
	require.NoError(t, err)
	rr, ll, pe := points[0], points[1], points[2]
	assert.Less(t, rr.p95, 500*time.Millisecond)
	assert.Greater(t, rr.sum.P99, time.Second, "round robin degrades above p95")
	assert.InDelta(t, 0.955, rr.success, 0.01)
	assert.Less(t, ll.sum.P99, 500*time.Millisecond)
	assert.Greater(t, ll.sum.P999, time.Second, "least loaded degrades above p99")
	assert.InDelta(t, 0.99, ll.success, 0.006)
	assert.Greater(t, pe.success, ll.success)
	assert.Less(t, pe.slowShare, ll.slowShare)
	assert.Less(t, ll.slowShare, rr.slowShare/5)
	assert.Less(t, pe.sum.P999, ll.sum.P999)
}

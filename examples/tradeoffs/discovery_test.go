package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

func discoveryLabCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A dead instance leaves within its TTL plus a sweep and a commit (from a
// later election if there was one) without checks, sooner with them, and no request fails
// once it has left.
func TestDiscoveryRemovalWithinTheLeaseBound(t *testing.T) {
	points, err := discoveryRemovalRun(discoveryLabCtx(t), &lab.Env{Seed: 1, Quick: true})
	require.NoError(t, err)
	require.Len(t, points, 2)
	for _, p := range points {
		require.NotEmpty(t, p.removal)
		assert.Zero(t, p.after, "failed requests after removal (checks %v)", p.checks)
		require.Len(t, p.bound, len(p.removal))
		for i, d := range p.removal {
			if !p.checks {
				assert.GreaterOrEqual(t, d, p.ttl-p.heartbeat-50*time.Millisecond, "removed before its lease could have lapsed")
				assert.Less(t, d, p.bound[i], "removed within the lease's bound (TTL + sweep + a commit, from death or a later election)")
			}
		}
	}
	assert.Less(t, discoveryMean(points[1].removal), discoveryMean(points[0].removal), "active checks remove sooner")
}

// The proxy is a hop slower; with the registry down both sides keep
// serving their last set, and the proxy's retry hides a dead instance.
func TestDiscoverySidesKeepServingWithoutTheRegistry(t *testing.T) {
	r, err := discoverySidesRun(discoveryLabCtx(t), &lab.Env{Seed: 1, Quick: true})
	require.NoError(t, err)
	assert.Greater(t, percentile(r.proxied, 0.5), percentile(r.direct, 0.5), "the extra hop costs time")
	assert.True(t, r.registerRefused)
	assert.Zero(t, r.downDirectFail+r.downProxyFail, "the last set keeps serving")
	assert.Zero(t, r.deadProxyFail, "the proxy retries GETs on the live instance")
	assert.Error(t, r.directWatchErr)
}

// Every watcher sees every acknowledged write once, in order, across a
// leader crash.
func TestDiscoveryFanoutNoGapsAcrossALeaderCrash(t *testing.T) {
	r, err := discoveryFanoutRun(discoveryLabCtx(t), &lab.Env{Seed: 1, Quick: true})
	require.NoError(t, err)
	assert.Zero(t, r.gaps)
	assert.Zero(t, r.duplicates)
	assert.Positive(t, r.resumed, "the crashed node's watchers resumed elsewhere")
	assert.NotEmpty(t, r.steady)
	assert.NotEmpty(t, r.change)
}

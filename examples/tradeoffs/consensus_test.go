package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

func consensusLabCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// No failover is faster than the heartbeat timeout (a follower must hear
// nothing for that long), failover grows with the timeout, and the failure
// detector fails over faster than raft's randomized timer alone.
func TestConsensusElectionScalesWithTimeout(t *testing.T) {
	points, err := consensusElectionRun(consensusLabCtx(t), &lab.Env{Seed: 1, Quick: true})
	require.NoError(t, err)
	require.Len(t, points, 4)
	p50 := map[bool][]time.Duration{}
	var ratios [2][]float64 // failover / timeout, raft alone and with the detector
	for _, p := range points {
		assert.GreaterOrEqual(t, p.trials[0], p.heartbeat*9/10, "min failover vs timeout %v (detector %v)", p.heartbeat, p.detector)
		assert.Less(t, percentile(p.trials, 0.5), 10*p.heartbeat, "p50 failover vs timeout %v (detector %v)", p.heartbeat, p.detector)
		p50[p.detector] = append(p50[p.detector], percentile(p.trials, 0.5))
		i := 0
		if p.detector {
			i = 1
		}
		for _, d := range p.trials {
			ratios[i] = append(ratios[i], float64(d)/float64(p.heartbeat))
		}
	}
	for detector, v := range p50 {
		require.Len(t, v, 2)
		assert.Greater(t, v[1], v[0], "longer timeout, slower failover (detector %v)", detector)
	}
	// Pooled over both timeouts (10 trials each), the detector's median
	// failover is below raft's alone.
	slices.Sort(ratios[0])
	slices.Sort(ratios[1])
	assert.Less(t, ratios[1][len(ratios[1])/2], ratios[0][len(ratios[0])/2], "median failover/timeout with the detector vs without")
}

// Write latency follows the majority: bigger clusters wait for farther
// followers.
func TestConsensusWriteLatencyFollowsMajority(t *testing.T) {
	points, err := consensusWriteLatencyRun(consensusLabCtx(t), &lab.Env{Seed: 1, Quick: true})
	require.NoError(t, err)
	require.Len(t, points, 3)
	for i, p := range points {
		p50 := percentile(p.lat, 0.5)
		assert.GreaterOrEqual(t, p50, p.predicted, "%d nodes: a write cannot beat its majority's link", p.nodes)
		if i > 0 {
			assert.Greater(t, p50, percentile(points[i-1].lat, 0.5), "%d nodes slower than %d", p.nodes, points[i-1].nodes)
		}
	}
}

// The minority refuses writes and linearizable reads; the majority serves
// them; nothing written in the minority survives healing.
func TestConsensusCAPMinorityRefusesWrites(t *testing.T) {
	r, err := consensusCAPRun(consensusLabCtx(t), &lab.Env{Seed: 1, Quick: true})
	require.NoError(t, err)
	require.Len(t, r.sides, 2)
	minority, majority := r.sides[0], r.sides[1]
	assert.Zero(t, minority.writesOK)
	assert.Zero(t, minority.linReadsOK)
	assert.Equal(t, minority.staleReads, minority.staleOK, "stale reads stay available")
	assert.Equal(t, minority.staleReads, minority.staleOld, "and return pre-partition data")
	assert.Positive(t, majority.writesOK)
	assert.Positive(t, majority.linReadsOK)
	assert.Zero(t, r.minorityLanded, "no split brain")
}

// Linearizable reads are never stale; stale reads on followers are, most of
// all behind a partition.
func TestConsensusStaleReadsOnlyInStaleMode(t *testing.T) {
	rows, err := consensusStaleRun(consensusLabCtx(t), &lab.Env{Seed: 1, Quick: true})
	require.NoError(t, err)
	require.Len(t, rows, 6)
	for _, r := range rows {
		if r.mode == consensus.Linearizable {
			assert.Zero(t, r.stale, "linearizable reads in phase %q", r.phase)
		}
	}
	isolated := rows[4]
	require.Equal(t, consensus.Stale, isolated.mode)
	assert.GreaterOrEqual(t, isolated.stale, isolated.reads/2-1, "reads on the isolated follower are stale")
}

package main

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

// The counts follow the strategies' rules: pushing everyone inserts one
// entry per follow, pulling everyone inserts nothing and merges every
// followee.
func TestFeedCost(t *testing.T) {
	g, err := newFeedGraph((&lab.Env{Seed: 1}).Rand(0), 1000, 10, 1)
	require.NoError(t, err)
	var follows, most int
	for _, fs := range g.following {
		follows += len(fs)
	}
	for _, n := range g.followers {
		most = max(most, n)
	}
	w := g.cost(fanout.OnWrite)
	assert.InDelta(t, float64(follows)/1000, w.amplification, 1e-9)
	assert.Equal(t, most, w.worstPost)
	assert.Equal(t, 2.0, w.lists, "own posts and the pushed timeline")
	r := g.cost(fanout.OnRead)
	assert.Zero(t, r.amplification)
	assert.Zero(t, r.worstPost)
	assert.InDelta(t, 1+float64(follows)/1000, r.lists, 1e-9)
	h := g.cost(fanout.Hybrid(int64(most)))
	assert.Less(t, h.worstPost, most, "the most-followed user is pulled")
	assert.Less(t, h.amplification, w.amplification)
	assert.InDelta(t, w.amplification+w.lists-1, h.amplification+h.lists, 1.0001, "every follow is paid once, on one side")
}

// Both experiments run under -quick and reach the verdicts the README
// states.
func TestFeedExperimentsRun(t *testing.T) {
	for _, c := range []struct {
		e    lab.Experiment
		want lab.Verdict
	}{{feedFanoutExperiment, lab.Agrees}, {feedThresholdExperiment, lab.Nuance}} {
		res, err := c.e.Run(context.Background(), &lab.Env{Seed: 1, Quick: true})
		require.NoError(t, err)
		assert.Equal(t, c.want, res.Verdict, "%s: %s", c.e.Name, res.Reason)
	}
}

// Verdicts follow the numbers.
func TestFeedVerdicts(t *testing.T) {
	wr, rd := feedStrategyName(fanout.OnWrite), feedStrategyName(fanout.OnRead)
	hy := feedStrategyName(fanout.Hybrid(100))
	rows := []feedFanoutRow{
		{s: 0.6, strategy: wr, cost: feedCost{amplification: 20, worstPost: 900, lists: 2}},
		{s: 1.2, strategy: wr, cost: feedCost{amplification: 20, worstPost: 4000, lists: 2}},
		{s: 1.2, strategy: rd, cost: feedCost{lists: 21}},
		{s: 1.2, strategy: hy, hybrid: true, cost: feedCost{amplification: 15, worstPost: 99, lists: 7}},
	}
	v, reason := feedFanoutVerdict(rows)
	assert.Equal(t, lab.Agrees, v)
	assert.Contains(t, reason, "grew from 900 to 4000 inserts")
	rows[3].cost.worstPost = 4000
	v, _ = feedFanoutVerdict(rows)
	assert.Equal(t, lab.Nuance, v, "a hybrid that pushes the celebrity bounds nothing")

	th := []feedThresholdRow{{threshold: math.MaxInt64, cost: feedCost{amplification: 20, worstPost: 40000, lists: 2}},
		{threshold: 1000, cost: feedCost{amplification: 18, worstPost: 999, lists: 2.3}}}
	v, reason = feedThresholdVerdict(th)
	assert.Equal(t, lab.Agrees, v)
	assert.Contains(t, reason, "threshold of 1000 followers cut the costliest post from 40000 to 999 inserts")
	th[1].cost.lists = 5
	v, _ = feedThresholdVerdict(th)
	assert.Equal(t, lab.Nuance, v, "reads pay too much")
	th[1].cost.worstPost = 39000
	v, reason = feedThresholdVerdict(th)
	assert.Equal(t, lab.Nuance, v)
	assert.Contains(t, reason, "No threshold")
}

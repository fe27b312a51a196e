package consensus

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// With the failure detector a lost leader costs exactly one election: the
// survivors act one after another in id order, so they never split the
// vote, and pre-vote keeps the refused first candidate from raising the
// term.
func TestDetector_OneElectionPerFailover(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	for trial := range 4 {
		old, err := c.WaitLeader(ctx)
		require.NoError(t, err)
		term := old.Stats().Term
		_, err = c.Failover(ctx)
		require.NoError(t, err)
		leader, err := c.WaitLeader(ctx)
		require.NoError(t, err)
		assert.NotEqual(t, old.ID(), leader.ID(), "trial %d", trial)
		assert.Equal(t, term+1, leader.Stats().Term, "trial %d: one election, no split vote", trial)
	}
	for _, n := range c.Nodes() {
		assert.Positive(t, n.Stats().DetectorTriggers, "%s's detector acted", n.ID())
	}
}

// A non-voter hears the same silence as the voters but never campaigns.
func TestDetector_NonVoterNeverCampaigns(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	nv, err := c.AddNode(ctx, true)
	require.NoError(t, err)
	for range 2 {
		_, err := c.Failover(ctx)
		require.NoError(t, err)
	}
	assert.Zero(t, nv.Stats().DetectorTriggers, "the non-voter's detector")
	assert.False(t, nv.IsLeader())
	var voters uint64
	for _, n := range c.Nodes() {
		if n != nv {
			voters += n.Stats().DetectorTriggers
		}
	}
	assert.Positive(t, voters, "the voters' detectors acted")
}

// A follower cut off for many heartbeat timeouts keeps campaigning in its
// minority, but pre-vote keeps its term down: when the partition heals it
// rejoins without deposing the leader the majority kept.
func TestDetector_LongIsolatedFollowerRejoinsWithoutDisruption(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	f := followerOf(t, c)
	c.Isolate(f.ID())
	eventually(t, ctx, "the isolated follower's detector acts", func() bool { return f.Stats().DetectorTriggers > 0 })
	for i := range 5 {
		putOnLeader(t, ctx, c, "k", fmt.Sprint(i))
	}
	// Several rounds of campaigning in the minority: the follower has been
	// a candidate, without contact from the leader, for five heartbeat
	// timeouts (each round lasts one election timeout).
	eventually(t, ctx, "the isolated follower campaigns for five heartbeat timeouts", func() bool {
		st := f.Stats()
		return st.State == "Candidate" && time.Since(st.LastContact) > 5*testTiming().HeartbeatTimeout
	})
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	term := leader.Stats().Term
	assert.LessOrEqual(t, f.Stats().Term, term, "the minority's campaigns never raised its term past the majority's")
	c.Heal()
	waitValue(t, ctx, f, "k", "4")
	eventually(t, ctx, "the follower knows the leader", func() bool {
		id, _ := f.Leader()
		return id == leader.ID()
	})
	assert.True(t, leader.IsLeader(), "the majority's leader keeps its place")
	assert.Equal(t, term, leader.Stats().Term, "no election on heal")
}

// Ranks order the voters other than the lost leader by id; non-voters have
// none. Distinct ranks are what keep the followers from acting together.
func TestDetector_RanksVotersByID(t *testing.T) {
	c := newCluster(t, ClusterOptions{Nodes: 4})
	ctx := testCtx(t)
	nv, err := c.AddNode(ctx, true)
	require.NoError(t, err)
	eventually(t, ctx, "the non-voter has the configuration", func() bool {
		f := nv.raft.GetConfiguration()
		return f.Error() == nil && len(f.Configuration().Servers) == 5
	})
	want := map[string]int{"n1": 0, "n3": 1, "n4": 2} // n2 is the lost leader
	for _, n := range c.Nodes() {
		d := &detector{n: n, r: n.raft}
		rank, voter := d.rankOf(raft.ServerID("n2"))
		if n == nv {
			assert.False(t, voter, "non-voter %s", n.ID())
			continue
		}
		if n.ID() == "n2" {
			assert.False(t, voter, "the lost leader itself")
			continue
		}
		assert.True(t, voter, n.ID())
		assert.Equal(t, want[n.ID()], rank, n.ID())
	}
}

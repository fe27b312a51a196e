package consensus

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCluster_ElectsOneLeaderAndReplicates(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	kv, err := leader.Put(ctx, "a", []byte("1"))
	require.NoError(t, err)
	assert.Positive(t, kv.Revision)
	got, err := leader.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "1", string(got.Value))

	leaders := 0
	for _, n := range c.Nodes() {
		if n.IsLeader() {
			leaders++
			continue
		}
		// A follower learns the leader from its first AppendEntries, which
		// may arrive after a write committed on the other follower.
		eventually(t, ctx, "follower "+n.ID()+" knows the leader", func() bool {
			id, _ := n.Leader()
			return id == leader.ID()
		})
		// Followers refuse writes and linearizable reads, naming the leader.
		_, err := n.Put(ctx, "b", []byte("x"))
		var nl *NotLeaderError
		require.ErrorAs(t, err, &nl)
		assert.Equal(t, leader.ID(), nl.LeaderID)
		_, err = n.Get(ctx, "a")
		assert.ErrorIs(t, err, ErrNotLeader)
		// Stale reads are served locally once replicated.
		eventually(t, ctx, "follower applies the write", func() bool {
			kv, err := n.Read(ctx, "a", Stale)
			return err == nil && string(kv.Value) == "1"
		})
	}
	assert.Equal(t, 1, leaders)
}

// After the leader is isolated the majority elects a new leader, the old one
// steps down, and the minority refuses writes: consistency over
// availability (CAP).
func TestCluster_IsolatedLeaderStepsDownAndMinorityRefusesWrites(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	old, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	_, err = old.Put(ctx, "k", []byte("before"))
	require.NoError(t, err)

	c.Isolate(old.ID())
	// The isolated leader must not commit anything.
	_, err = old.Put(ctx, "k", []byte("minority"))
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNotLeader) || errors.Is(err, ErrIndeterminate), "minority write: %v", err)

	leader, err := c.WaitLeader(ctx, old.ID())
	require.NoError(t, err)
	_, err = leader.Put(ctx, "k", []byte("majority"))
	require.NoError(t, err)
	eventually(t, ctx, "old leader steps down", func() bool { return !old.IsLeader() })
	// The deposed leader cannot serve a linearizable read...
	_, err = old.Get(ctx, "k")
	assert.ErrorIs(t, err, ErrNotLeader)
	// ...and its stale read shows the old value: split brain is visible
	// only to readers that asked for stale data.
	kv, err := old.Read(ctx, "k", Stale)
	require.NoError(t, err)
	assert.Equal(t, "before", string(kv.Value))

	c.Heal()
	eventually(t, ctx, "healed node catches up", func() bool {
		kv, err := old.Read(ctx, "k", Stale)
		return err == nil && string(kv.Value) == "majority"
	})
	got, err := leader.Get(ctx, "k")
	if errors.Is(err, ErrNotLeader) { // leadership may move on heal
		l, werr := c.WaitLeader(ctx)
		require.NoError(t, werr)
		got, err = l.Get(ctx, "k")
	}
	require.NoError(t, err)
	assert.Equal(t, "majority", string(got.Value), "the minority's write was never committed")
}

// "a new node catching up before it is promoted": AddVoter promotes a
// non-voter in place.
func TestNode_AddVoterPromotesANonVoter(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	n, err := c.AddNode(ctx, true)
	require.NoError(t, err)
	suffrage := func() (nonVoter bool) {
		leader, err := c.WaitLeader(ctx)
		require.NoError(t, err)
		servers, err := leader.Servers(ctx)
		require.NoError(t, err)
		for _, s := range servers {
			if s.ID == n.ID() {
				return s.NonVoter
			}
		}
		t.Fatalf("%s is not a member", n.ID())
		return false
	}
	require.True(t, suffrage())
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	var addr string
	servers, err := leader.Servers(ctx)
	require.NoError(t, err)
	for _, s := range servers {
		if s.ID == n.ID() {
			addr = s.Address
		}
	}
	require.NoError(t, leader.AddVoter(ctx, n.ID(), addr))
	assert.False(t, suffrage(), "promoted")

	// Stats: a follower reports when it last heard from the leader; the
	// leader reports nothing.
	eventually(t, ctx, "the new voter hears the leader", func() bool { return !n.Stats().LastContact.IsZero() })
	if st := leader.Stats(); st.State == "Leader" { // no election since
		assert.True(t, st.LastContact.IsZero())
	}
}

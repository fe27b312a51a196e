package consensus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// putOnLeader retries a write on whichever node leads, until it commits.
func putOnLeader(t testing.TB, ctx context.Context, c *LocalCluster, key, value string) KV {
	t.Helper()
	for {
		leader, err := c.WaitLeader(ctx)
		require.NoError(t, err)
		kv, err := leader.Put(ctx, key, []byte(value))
		if err == nil {
			return kv
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrIndeterminate) {
			require.NoError(t, err)
		}
	}
}

func waitValue(t testing.TB, ctx context.Context, n *Node, key, want string) {
	t.Helper()
	eventually(t, ctx, fmt.Sprintf("%s has %s=%s", n.ID(), key, want), func() bool {
		kv, err := n.Read(ctx, key, Stale)
		return err == nil && string(kv.Value) == want
	})
}

func followerOf(t testing.TB, c *LocalCluster) *Node {
	t.Helper()
	for _, n := range c.Nodes() {
		if !n.IsLeader() {
			return n
		}
	}
	t.Fatal("no follower")
	return nil
}

func TestCluster_RestartedNodeCatchesUpFromLog(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	f := followerOf(t, c)
	require.NoError(t, c.Crash(f.ID()))
	for i := range 5 {
		putOnLeader(t, ctx, c, fmt.Sprintf("k%d", i), "v")
	}
	n, err := c.Restart(f.ID())
	require.NoError(t, err)
	waitValue(t, ctx, n, "k4", "v")
	assert.Zero(t, n.Stats().LastSnapshotIndex, "caught up from the log, no snapshot needed")
}

func TestCluster_RestartedNodeCatchesUpFromSnapshot(t *testing.T) {
	c := newCluster(t, ClusterOptions{Node: Options{SnapshotThreshold: 8, TrailingLogs: 2, SnapshotInterval: 10 * time.Millisecond}})
	ctx := testCtx(t)
	f := followerOf(t, c)
	require.NoError(t, c.Crash(f.ID()))
	for i := range 40 {
		putOnLeader(t, ctx, c, fmt.Sprintf("k%d", i), fmt.Sprint(i))
	}
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	require.NoError(t, leader.Snapshot(ctx))
	n, err := c.Restart(f.ID())
	require.NoError(t, err)
	waitValue(t, ctx, n, "k39", "39")
	waitValue(t, ctx, n, "k0", "0")
	eventually(t, ctx, "the follower installed a snapshot (the log was compacted)", func() bool {
		return n.Stats().LastSnapshotIndex > 0
	})
}

// A durable cluster over real TCP survives the loss of every process: the
// raft-boltdb log and file snapshots bring the data back.
func TestCluster_DurableTCPClusterSurvivesFullRestart(t *testing.T) {
	c := newCluster(t, ClusterOptions{Network: TCPNetwork, DataDir: t.TempDir(), Node: Options{SnapshotThreshold: 16, TrailingLogs: 4, SnapshotInterval: 20 * time.Millisecond}})
	ctx := testCtx(t)
	for i := range 30 {
		putOnLeader(t, ctx, c, fmt.Sprintf("k%d", i), fmt.Sprint(i))
	}
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	require.NoError(t, leader.Snapshot(ctx))
	putOnLeader(t, ctx, c, "after-snapshot", "yes")
	ids := c.IDs()
	for _, id := range ids {
		require.NoError(t, c.Crash(id))
	}
	for _, id := range ids {
		_, err := c.Restart(id)
		require.NoError(t, err)
	}
	leader, err = c.WaitLeader(ctx)
	require.NoError(t, err)
	eventually(t, ctx, "leader serves the old data", func() bool {
		kv, err := leader.Get(ctx, "after-snapshot")
		kv0, err0 := leader.Get(ctx, "k0")
		return err == nil && err0 == nil && string(kv.Value) == "yes" && string(kv0.Value) == "0"
	})
}

// A one-way partition: the leader cannot reach one follower, but that
// follower can still reach the leader. The follower times out, and Raft's
// pre-vote keeps it from disrupting the healthy majority forever; the
// cluster keeps accepting writes either way.
func TestCluster_OneWayPartitionKeepsMajorityWritable(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	f := followerOf(t, c)
	c.CutLink(leader.ID(), f.ID())
	for i := range 10 {
		putOnLeader(t, ctx, c, "k", fmt.Sprint(i))
	}
	c.Heal()
	for _, n := range c.Nodes() {
		waitValue(t, ctx, n, "k", "9")
	}
}

// A slow link to one follower does not slow commits: the other follower
// completes the quorum.
func TestCluster_SlowFollowerDoesNotBlockQuorum(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	f := followerOf(t, c)
	c.SetLatency(leader.ID(), f.ID(), 30*time.Millisecond)
	c.SetLatency(f.ID(), leader.ID(), 30*time.Millisecond)
	for i := range 20 {
		putOnLeader(t, ctx, c, "k", fmt.Sprint(i))
	}
	waitValue(t, ctx, f, "k", "19")
	c.SetLatency(leader.ID(), f.ID(), 0)
	c.SetLatency(f.ID(), leader.ID(), 0)
}

// Membership changes (add a voter, add a non-voter, remove a voter, remove
// the leader) while writers keep writing: no acknowledged write is lost.
func TestCluster_MembershipChangeUnderLoad(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked = map[string]string{}
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				key, val := fmt.Sprintf("w%d", w), fmt.Sprint(i)
				leader := c.Leader()
				if leader == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				if _, err := leader.Put(ctx, key, []byte(val)); err == nil {
					mu.Lock()
					acked[key] = val
					mu.Unlock()
				}
			}
		})
	}
	_, err := c.AddNode(ctx, false)
	require.NoError(t, err)
	_, err = c.AddNode(ctx, true)
	require.NoError(t, err)
	require.NoError(t, c.RemoveNode(ctx, "n2"))
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	require.NoError(t, c.RemoveNode(ctx, leader.ID()))
	_, err = c.WaitLeader(ctx)
	require.NoError(t, err)
	stop.Store(true)
	wg.Wait()

	leader, err = c.WaitLeader(ctx)
	require.NoError(t, err)
	servers, err := leader.Servers(ctx)
	require.NoError(t, err)
	assert.Len(t, servers, 3, "5 members, minus two removed")
	assert.Len(t, c.Nodes(), 3)
	for key, val := range acked {
		// The last acknowledged value of each writer survives: the final
		// value is it, or a later write whose acknowledgement was lost
		// (ErrIndeterminate) but which committed anyway.
		kv, err := leader.Get(ctx, key)
		require.NoError(t, err)
		want, _ := strconv.Atoi(val)
		got, _ := strconv.Atoi(string(kv.Value))
		assert.GreaterOrEqual(t, got, want, key)
		for _, n := range c.Nodes() {
			waitValue(t, ctx, n, key, string(kv.Value))
		}
	}
	assert.NotEmpty(t, acked)
}

func TestLocalCluster_LatencySlowsALink(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	const d = 40 * time.Millisecond // under the heartbeat timeout: no election
	for _, id := range c.IDs() {
		if id != leader.ID() {
			c.SetLatency(leader.ID(), id, d)
		}
	}
	start := time.Now()
	_, err = leader.Put(ctx, "k", []byte("v"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), d, "a write commits once a follower has it, over a slow link")
}

// A leader cut off from its followers answers no linearizable read on its
// own, even before it notices and steps down: the read must confirm its
// leadership with a quorum.
func TestCluster_IsolatedLeaderServesNoLinearizableRead(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	_, err = leader.Put(ctx, "k", []byte("v1"))
	require.NoError(t, err)
	_, err = leader.Get(ctx, "k") // the term's barrier is behind it
	require.NoError(t, err)
	c.Isolate(leader.ID())
	// A heartbeat in flight when the links went down still lands, and
	// raft counts its answer as a vote for the leadership of any read
	// then waiting: each of the two followers may thus confirm one read.
	// No third, and none once it has stepped down.
	var err3 error
	for range 3 {
		if _, err3 = leader.Get(ctx, "k"); err3 != nil {
			break
		}
		require.Equal(t, raft.Leader, leader.raft.State(), "a read answered after its leader stepped down")
	}
	require.Error(t, err3, "the isolated leader read alone")
}

func TestLocalCluster_PartitionKeepsEachGroupConnected(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	old, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	var rest []string
	for _, id := range c.IDs() {
		if id != old.ID() {
			rest = append(rest, id)
		}
	}
	c.Partition([]string{old.ID()}, rest) // the minority listed first
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	leader, err := c.WaitLeader(wctx, old.ID())
	require.NoError(t, err, "the majority's two nodes reach each other")
	_, err = leader.Put(ctx, "k", []byte("majority"))
	require.NoError(t, err)
	_, err = old.Read(ctx, "k", Stale)
	require.ErrorIs(t, err, ErrKeyNotFound, "nothing crosses between the groups")

	// A node in no group is cut off from everyone.
	c.Partition(rest)
	_, err = leader.Put(ctx, "k2", []byte("v"))
	require.NoError(t, err)
	_, err = old.Read(ctx, "k2", Stale)
	require.ErrorIs(t, err, ErrKeyNotFound)
}

func TestLease_TTLBounds(t *testing.T) {
	c := newCluster(t, ClusterOptions{Nodes: 1})
	ctx := testCtx(t)
	n, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	_, err = n.GrantLease(ctx, maxLeaseTTL)
	require.NoError(t, err, "the longest TTL")
	_, err = n.GrantLease(ctx, maxLeaseTTL+1)
	require.ErrorIs(t, err, ErrInvalidArgument)
}

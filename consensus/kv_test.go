package consensus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKV_Operations(t *testing.T) {
	c := newCluster(t, ClusterOptions{Nodes: 1})
	ctx := testCtx(t)
	n, err := c.WaitLeader(ctx)
	require.NoError(t, err)

	a1, err := n.Create(ctx, "a", []byte("1"))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), a1.Version)
	assert.Equal(t, a1.Revision, a1.CreateRevision)
	_, err = n.Create(ctx, "a", []byte("again"))
	assert.ErrorIs(t, err, ErrKeyExists)

	a2, err := n.Put(ctx, "a", []byte("2"))
	require.NoError(t, err)
	assert.Greater(t, a2.Revision, a1.Revision, "revision grows per key")
	assert.Equal(t, a1.CreateRevision, a2.CreateRevision)
	assert.Equal(t, uint64(2), a2.Version)

	_, err = n.CompareAndSwap(ctx, "a", []byte("1"), []byte("3"))
	var cf *CompareFailedError
	require.ErrorAs(t, err, &cf)
	assert.ErrorIs(t, err, ErrCompareFailed)
	assert.Equal(t, "2", string(cf.Current.Value))
	a3, err := n.CompareAndSwap(ctx, "a", []byte("2"), []byte("3"))
	require.NoError(t, err)
	assert.Equal(t, "3", string(a3.Value))

	_, err = n.CompareAndSwap(ctx, "missing", []byte("x"), []byte("y"))
	assert.ErrorIs(t, err, ErrKeyNotFound, "CAS on a missing key")

	_, err = n.Put(ctx, "b/1", []byte("x"))
	require.NoError(t, err)
	_, err = n.Put(ctx, "b/2", []byte("y"))
	require.NoError(t, err)
	list, err := n.List(ctx, "b/", Linearizable)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "b/1", list[0].Key)

	del, err := n.Delete(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "3", string(del.Value))
	_, err = n.Get(ctx, "a")
	assert.ErrorIs(t, err, ErrKeyNotFound)
	_, err = n.Delete(ctx, "a")
	assert.ErrorIs(t, err, ErrKeyNotFound)

	st := n.Stats()
	assert.Equal(t, 2, st.Keys)
	assert.Positive(t, st.Applies)
	assert.Positive(t, st.LinearizableReads)
	assert.Equal(t, "Leader", st.State)
}

// Linearizable reads confirm leadership with the quorum (ReadIndex) and
// write nothing to the log, past the one no-op a leader commits in its
// term before its first.
func TestKV_LinearizableReadsDoNotGrowTheLog(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	putOnLeader(t, ctx, c, "k", "v")
	// A busy machine may move the leadership during the reads; the new
	// leader's no-op then grows the log, so such a round is tried again.
	eventually(t, ctx, "five reads within one leader's term", func() bool {
		leader, err := c.WaitLeader(ctx)
		require.NoError(t, err)
		if _, err := leader.Read(ctx, "k", Linearizable); err != nil {
			return false
		}
		before := leader.Stats()
		for range 5 {
			kv, err := leader.Read(ctx, "k", Linearizable)
			if err != nil {
				return false
			}
			assert.Equal(t, "v", string(kv.Value))
		}
		after := leader.Stats()
		if after.State != "Leader" || after.Term != before.Term {
			return false
		}
		assert.Equal(t, before.LastIndex, after.LastIndex, "no log entry for a read")
		return true
	})
}

// A write whose caller gives up (its context is cancelled while the
// isolated leader cannot commit) returns with the cancellation, not
// whatever Raft says later.
func TestKV_CancelledWriteReturnsTheCancellation(t *testing.T) {
	// A lease of a second: the isolated leader keeps leading, and the
	// write waiting, well past the cancellation however busy the machine.
	slow := testTiming()
	slow.HeartbeatTimeout, slow.ElectionTimeout, slow.LeaderLeaseTimeout = time.Second, time.Second, time.Second
	c := newCluster(t, ClusterOptions{Node: Options{Timing: slow}})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	c.Isolate(leader.ID())
	wctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(20*time.Millisecond, cancel) // most likely once the write waits on Raft
	defer timer.Stop()
	_, err = leader.Put(wctx, "k", []byte("v"))
	require.ErrorIs(t, err, context.Canceled)
}

func TestKV_BadInput(t *testing.T) {
	c := newCluster(t, ClusterOptions{Nodes: 1, Node: Options{MaxValueSize: 8, MaxKeySize: 4}})
	ctx := testCtx(t)
	n, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	_, err = n.Put(ctx, "", []byte("x"))
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = n.Put(ctx, "k", []byte("123456789"))
	assert.ErrorIs(t, err, ErrValueTooLarge)
	assert.Contains(t, err.Error(), "9 bytes")
	_, err = n.Put(ctx, "kkkkk", nil)
	assert.ErrorIs(t, err, ErrValueTooLarge)
	_, err = n.Read(ctx, "k", ReadMode(9))
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = n.CompareAndSwap(ctx, "k", []byte("123456789"), []byte("x"))
	assert.ErrorIs(t, err, ErrValueTooLarge, "an old value over the limit")
	// Nothing bad reached the log.
	kvs, err := n.List(ctx, "", Linearizable)
	require.NoError(t, err)
	assert.Empty(t, kvs)

	// The limits themselves are allowed.
	_, err = n.Put(ctx, "kkkk", []byte("12345678"))
	require.NoError(t, err)
	_, err = n.CompareAndSwap(ctx, "kkkk", []byte("12345678"), []byte("87654321"))
	require.NoError(t, err)
}

func TestNode_MembershipBadInput(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	err = leader.RemoveServer(ctx, "nope")
	assert.ErrorIs(t, err, ErrUnknownNode)
	assert.Contains(t, err.Error(), `"nope"`)
	err = leader.AddVoter(ctx, leader.ID(), "elsewhere")
	assert.ErrorIs(t, err, ErrInvalidArgument, "joining a node to itself")
	assert.NoError(t, leader.AddVoter(ctx, leader.ID(), leader.Addr()), "a join retried after it added the node, since elected")
	other := followerOf(t, c)
	err = leader.AddVoter(ctx, "n9", other.Addr())
	assert.ErrorIs(t, err, ErrDuplicateServer, "duplicate address")
	err = leader.AddVoter(ctx, other.ID(), "n9")
	assert.ErrorIs(t, err, ErrDuplicateServer, "known id at another address")
	assert.NoError(t, leader.AddVoter(ctx, other.ID(), other.Addr()), "re-adding a member is a no-op")
	assert.ErrorIs(t, leader.AddVoter(ctx, "", "x"), ErrInvalidArgument)
	assert.ErrorIs(t, leader.TransferLeadership(ctx, "nope"), ErrUnknownNode)
	assert.ErrorIs(t, other.Leave(ctx), ErrNotLeader)
	servers, err := leader.Servers(ctx)
	require.NoError(t, err)
	assert.Len(t, servers, 3)
}

func TestNode_TransferLeadership(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	target := followerOf(t, c)
	require.NoError(t, leader.TransferLeadership(ctx, target.ID()))
	eventually(t, ctx, "target leads", target.IsLeader)
	require.NoError(t, target.Leave(ctx))
	eventually(t, ctx, "a new leader without the one that left", func() bool {
		l := c.Leader()
		return l != nil && l != target
	})
}

func TestNewNode_InvalidConfig(t *testing.T) {
	_, tr := raft.NewInmemTransport("")
	defer tr.Close()
	cases := map[string]Options{
		"empty id":             {Addr: "127.0.0.1:0", InMemory: true},
		"no address":           {ID: "a", InMemory: true},
		"empty data dir":       {ID: "a", Transport: tr},
		"both storages":        {ID: "a", Transport: tr, InMemory: true, DataDir: "/tmp/x"},
		"negative value max":   {ID: "a", Transport: tr, InMemory: true, MaxValueSize: -1},
		"tiny heartbeat":       {ID: "a", Transport: tr, InMemory: true, Timing: Timing{HeartbeatTimeout: time.Microsecond, ElectionTimeout: time.Second, LeaderLeaseTimeout: time.Second, CommitTimeout: time.Second}},
		"lease > heartbeat":    {ID: "a", Transport: tr, InMemory: true, Timing: Timing{HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: time.Second, CommitTimeout: time.Millisecond}},
		"detector, no timers":  {ID: "a", Transport: tr, InMemory: true, Timing: Timing{FastFailover: true}},
		"election < heartbeat": {ID: "a", Transport: tr, InMemory: true, Timing: Timing{HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 20 * time.Millisecond, LeaderLeaseTimeout: 10 * time.Millisecond, CommitTimeout: time.Millisecond, FastFailover: true}},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			n, err := NewNode(o)
			assert.Nil(t, n)
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.True(t, strings.HasPrefix(err.Error(), "consensus: "), err.Error())
		})
	}
	_, err := NewLocalCluster(testCtx(t), ClusterOptions{Nodes: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewLocalCluster(testCtx(t), ClusterOptions{Network: 7})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func TestNode_BootstrapBadInput(t *testing.T) {
	_, tr := raft.NewInmemTransport("a")
	n, err := NewNode(Options{ID: "a", Transport: tr, InMemory: true, Timing: LANTiming()})
	require.NoError(t, err)
	defer n.Close(context.Background())
	ctx := testCtx(t)
	assert.ErrorIs(t, n.Bootstrap(ctx, Server{ID: "b", Address: "b"}), ErrInvalidArgument, "list without this node")
	assert.ErrorIs(t, n.Bootstrap(ctx, Server{ID: "a", Address: "a"}, Server{ID: "b", Address: "a"}), ErrDuplicateServer)
	assert.ErrorIs(t, n.Bootstrap(ctx, Server{ID: "a"}), ErrInvalidArgument)
	require.NoError(t, n.Bootstrap(ctx))
	eventually(t, ctx, "single node leads", n.IsLeader)
	err = n.Bootstrap(ctx)
	assert.True(t, errors.Is(err, raft.ErrCantBootstrap), "second bootstrap: %v", err)
	require.NoError(t, n.Close(context.Background()))
	_, err = n.Put(ctx, "k", nil)
	assert.Error(t, err, "closed node")
}

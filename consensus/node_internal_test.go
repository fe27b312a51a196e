package consensus

import (
	"context"
	"errors"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A future hashicorp/raft never answers (queued when the node shut down)
// still returns once the node's done channel closes.
func TestBindShutdownEndsOrphanedFutures(t *testing.T) {
	_, tr := raft.NewInmemTransport("x")
	defer tr.Close()
	n, err := NewNode(Options{ID: "x", Transport: tr, InMemory: true, Timing: LANTiming()})
	assert.NoError(t, err)
	// raft's own future types accept the binding.
	for _, f := range []raft.Future{n.raft.VerifyLeader(), n.raft.GetConfiguration()} {
		ch := make(chan struct{})
		bindShutdown(f, ch)
		got := reflect.ValueOf(f).Elem().FieldByName("ShutdownCh")
		assert.Equal(t, reflect.ValueOf(ch).Pointer(), got.Pointer(), "%T", f)
		_ = f.Error()
	}
	assert.NoError(t, n.Close(context.Background()))
	f := n.raft.VerifyLeader() // after shutdown: answered at once
	assert.ErrorIs(t, n.wait(t.Context(), f), ErrClosed)

	// An unexported future type, as raft's verify future is: the helper
	// must reach its embedded ShutdownCh.
	done := make(chan struct{})
	g := raft.Future(&orphan{})
	bindShutdown(g, done)
	close(done)
	assert.ErrorIs(t, g.Error(), raft.ErrRaftShutdown)
}

// Raft shuts a leader down by itself once the leader's own removal has
// committed, and may leave that removal's future unanswered: a waiter on
// such a future returns ErrClosed without a Close.
func TestWaitEndsWhenRaftShutsItselfDown(t *testing.T) {
	_, tr := raft.NewInmemTransport("x")
	defer tr.Close()
	n, err := NewNode(Options{ID: "x", Transport: tr, InMemory: true, Timing: LANTiming()})
	require.NoError(t, err)
	defer n.Close(context.Background())
	require.NoError(t, n.raft.Shutdown().Error())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	assert.ErrorIs(t, n.wait(ctx, &orphan{}), ErrClosed)
}

// orphan mimics raft's futures: an embedded struct with a ShutdownCh.
type orphan struct{ inner }

type inner struct {
	ShutdownCh chan struct{}
}

func (o *orphan) Error() error {
	<-o.ShutdownCh
	return raft.ErrRaftShutdown
}

// damagedLog is a log store that cannot read one entry.
type damagedLog struct {
	*raft.InmemStore
	bad uint64
}

var errDamaged = errors.New("damaged entry")

func (d damagedLog) GetLog(index uint64, l *raft.Log) error {
	if index == d.bad {
		return errDamaged
	}
	return d.InmemStore.GetLog(index, l)
}

// A log entry raft cannot read when it replays the log at start fails
// NewNode with an error naming the node; hashicorp/raft itself panics.
func TestNewNode_UnreadableLogIsAnError(t *testing.T) {
	s := raft.NewInmemStore()
	require.NoError(t, s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogNoop}, {Index: 2, Term: 1, Type: raft.LogNoop}}))
	_, tr := raft.NewInmemTransport("x")
	_, err := newNode(Options{ID: "x", Transport: tr}, &storage{logs: damagedLog{InmemStore: s, bad: 1}, stable: s, snaps: raft.NewInmemSnapshotStore()})
	require.ErrorIs(t, err, errDamaged)
	assert.Contains(t, err.Error(), `node "x"`)
}

// Binding a future to the node's shutdown runs on every write and
// allocates nothing.
func TestBindShutdownAllocatesNothing(t *testing.T) {
	_, tr := raft.NewInmemTransport("x")
	n, err := NewNode(Options{ID: "x", Transport: tr, InMemory: true, Timing: LANTiming()})
	require.NoError(t, err)
	futures := []raft.Future{n.raft.Apply(nil, 0), n.raft.VerifyLeader(), n.raft.GetConfiguration(), &orphan{}}
	require.NoError(t, n.Close(context.Background()))
	done := make(chan struct{})
	for _, f := range futures {
		bindShutdown(f, done) // the first call per type finds the field
		allocs := testing.AllocsPerRun(100, func() { bindShutdown(f, done) })
		assert.Zero(t, allocs, "%T", f)
	}
	// A type without the field is left alone.
	var other struct{ raft.Future }
	assert.NotPanics(t, func() { bindShutdown(&other, done) })
}

// A node's own TCP transport refuses pipelined replication (so the leader
// never opens the pipeline that can wedge a follower and its own
// shutdown), and Close still closes it: the Raft port stops accepting.
func TestNewNode_TransportRefusesPipelines(t *testing.T) {
	n, err := NewNode(Options{ID: "n1", Addr: "127.0.0.1:0", InMemory: true, Timing: LANTiming()})
	require.NoError(t, err)
	_, err = n.trans.AppendEntriesPipeline("n2", "127.0.0.1:1")
	require.ErrorIs(t, err, raft.ErrPipelineReplicationNotSupported)
	addr := n.Addr()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err, "the Raft port accepts while the node runs")
	require.NoError(t, conn.Close())
	require.NoError(t, n.Close(context.Background()))
	_, err = net.Dial("tcp", addr)
	assert.Error(t, err, "the Raft port is closed with the node")
}

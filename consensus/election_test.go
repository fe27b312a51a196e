package consensus

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every subscriber gets the current state at once and then every change —
// unlike raft.LeaderCh, which serves one consumer.
func TestNode_SubscribeServesManyConsumers(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	subs := []<-chan LeaderState{leader.Subscribe(ctx), leader.Subscribe(ctx), leader.Subscribe(ctx)}
	for _, ch := range subs {
		st := <-ch
		assert.True(t, st.IsLeader, "current state delivered on subscribe")
		assert.Equal(t, leader.ID(), st.LeaderID)
	}
	c.Isolate(leader.ID())
	for i, ch := range subs {
		for st := range ch {
			if !st.IsLeader {
				break
			}
		}
		assert.False(t, leader.IsLeader(), "subscriber %d saw the step-down", i)
	}
	// A cancelled subscription's channel closes.
	sctx, cancel := context.WithCancel(ctx)
	ch := leader.Subscribe(sctx)
	<-ch
	cancel()
	for range ch {
	}
}

func TestNode_WhileLeaderCancelsOnLeadershipLoss(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)

	var runs atomic.Int32
	started := make(chan struct{}, 4)
	stopped := make(chan struct{}, 4)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- leader.WhileLeader(wctx, func(ctx context.Context) error {
			runs.Add(1)
			started <- struct{}{}
			<-ctx.Done()
			stopped <- struct{}{}
			return ctx.Err()
		})
	}()
	<-started
	c.Isolate(leader.ID())
	<-stopped // cancelled the moment leadership was lost
	assert.False(t, leader.IsLeader())
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, int32(1), runs.Load())
}

func TestNode_WhileLeaderOnFollowerWaits(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	f := followerOf(t, c)
	wctx, cancel := context.WithCancel(ctx)
	var ran atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- f.WhileLeader(wctx, func(context.Context) error { ran.Store(true); return nil })
	}()
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.False(t, ran.Load(), "a follower never runs leader-only work")
}

// A follower counts learning of a leader as a leadership change, though
// it was not the leader before or after.
func TestNode_FollowerCountsANewLeader(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	for _, n := range c.Nodes() {
		// Whoever leads by then: a busy machine may move the leadership.
		eventually(t, ctx, n.ID()+" counts the leader it learnt of", func() bool {
			id, _ := n.Leader()
			return id != "" && n.Stats().LeaderChanges > 0
		})
	}
}

// The OnLeaderChange hook sees this node win the election, and Stats counts
// the change.
func TestNode_OnLeaderChangeHook(t *testing.T) {
	got := make(chan LeaderState, 16)
	c := newCluster(t, ClusterOptions{Nodes: 1, Node: Options{OnLeaderChange: func(s LeaderState) {
		select {
		case got <- s:
		default:
		}
	}}})
	ctx := testCtx(t)
	n, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	for {
		select {
		case s := <-got:
			if !s.IsLeader {
				continue
			}
			assert.Equal(t, n.ID(), s.LeaderID)
			assert.Positive(t, s.Term)
			eventually(t, ctx, "stats count the change", func() bool { return n.Stats().LeaderChanges > 0 })
			return
		case <-ctx.Done():
			t.Fatal("hook never reported leadership")
		}
	}
}

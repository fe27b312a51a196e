package consensus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLock_FencingRejectsExpiredHolder(t *testing.T) {
	clock := newManualClock()
	c := newCluster(t, ClusterOptions{Nodes: 1, Node: Options{Now: clock.Now}})
	ctx := testCtx(t)
	n, err := c.WaitLeader(ctx)
	require.NoError(t, err)

	a, err := n.AcquireLock(ctx, "job", "alice", time.Second)
	require.NoError(t, err)
	_, err = n.AcquireLock(ctx, "job", "bob", time.Second)
	require.ErrorIs(t, err, ErrLockHeld)
	_, err = n.PutFenced(ctx, a, "out", []byte("alice-1"))
	require.NoError(t, err)

	clock.Advance(2 * time.Second) // alice pauses past her TTL
	_, err = n.RenewLock(ctx, a, time.Second)
	require.ErrorIs(t, err, ErrLeaseLost)
	b, err := n.AcquireLock(ctx, "job", "bob", time.Second)
	require.NoError(t, err)
	assert.Greater(t, b.Token, a.Token, "fencing tokens grow")
	_, err = n.PutFenced(ctx, b, "out", []byte("bob-1"))
	require.NoError(t, err)

	// Alice wakes up and writes with her old token: rejected.
	_, err = n.PutFenced(ctx, a, "out", []byte("alice-2"))
	require.ErrorIs(t, err, ErrLeaseLost)
	kv, err := n.Get(ctx, "out")
	require.NoError(t, err)
	assert.Equal(t, "bob-1", string(kv.Value))

	holder, ok, err := n.LockHolder(ctx, "job", Linearizable)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "bob", holder.Owner)
	assert.Equal(t, clock.Now().Add(time.Second).UnixNano(), holder.Expires().UnixNano())
	clock.Advance(time.Second)
	_, ok, err = n.LockHolder(ctx, "job", Stale)
	require.NoError(t, err)
	assert.False(t, ok, "a lock is not held at its expiry")
	clock.Advance(-time.Nanosecond)
	_, ok, err = n.LockHolder(ctx, "job", Stale)
	require.NoError(t, err)
	assert.True(t, ok, "held until then")

	b, err = n.RenewLock(ctx, b, time.Second)
	require.NoError(t, err)
	require.ErrorIs(t, n.ReleaseLock(ctx, a), ErrLeaseLost)
	require.NoError(t, n.ReleaseLock(ctx, b))
	_, ok, err = n.LockHolder(ctx, "job", Stale)
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestLock_BadInput(t *testing.T) {
	c := newCluster(t, ClusterOptions{Nodes: 1})
	ctx := testCtx(t)
	n, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	_, err = n.AcquireLock(ctx, "", "o", time.Second)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = n.AcquireLock(ctx, "l", "", time.Second)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = n.AcquireLock(ctx, "l", "o", 0)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = n.RenewLock(ctx, Lease{Name: "l", Owner: "o", Token: 99}, time.Second)
	assert.ErrorIs(t, err, ErrLeaseLost)
}

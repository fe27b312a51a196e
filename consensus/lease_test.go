package consensus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLease_GrantAttachRevokeAndBadInput(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	minTTL := 3 * testTiming().HeartbeatTimeout

	for _, ttl := range []time.Duration{0, -time.Second, minTTL - time.Millisecond, 11 * 365 * 24 * time.Hour} {
		_, err := leader.GrantLease(ctx, ttl)
		require.ErrorIs(t, err, ErrInvalidArgument, "ttl %v", ttl)
		assert.Contains(t, err.Error(), ttl.String())
	}
	_, err = leader.Put(ctx, "svc/x", []byte("v"), WithLease(424242))
	require.ErrorIs(t, err, ErrLeaseNotFound)
	_, err = leader.Get(ctx, "svc/x")
	require.ErrorIs(t, err, ErrKeyNotFound, "a write with an unknown lease changes nothing")
	_, err = leader.KeepAlive(ctx, 424242)
	require.ErrorIs(t, err, ErrLeaseNotFound)
	require.ErrorIs(t, leader.RevokeLease(ctx, 424242), ErrLeaseNotFound)

	g, err := leader.GrantLease(ctx, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, time.Minute, g.TTL)
	a, err := leader.Put(ctx, "svc/a", []byte("1"), WithLease(g.ID))
	require.NoError(t, err)
	assert.Equal(t, g.ID, a.Lease)
	_, err = leader.Create(ctx, "svc/b", []byte("1"), WithLease(g.ID))
	require.NoError(t, err)
	_, err = leader.Put(ctx, "svc/c", []byte("1"), WithLease(g.ID))
	require.NoError(t, err)
	_, err = leader.Put(ctx, "svc/c", []byte("detached")) // no lease: detached
	require.NoError(t, err)
	k, err := leader.KeepAlive(ctx, g.ID)
	require.NoError(t, err)
	assert.False(t, k.Expires.Before(g.Expires))

	w, err := leader.Watch("svc/", WatchOptions{Prefix: true})
	require.NoError(t, err)
	require.NoError(t, leader.RevokeLease(ctx, g.ID))
	evs, err := w.Recv(ctx)
	require.NoError(t, err)
	require.Len(t, evs, 2, "both attached keys, in one revision")
	assert.Equal(t, []string{"svc/a", "svc/b"}, []string{evs[0].KV.Key, evs[1].KV.Key})
	assert.Equal(t, evs[0].KV.Revision, evs[1].KV.Revision)
	assert.Equal(t, EventDelete, evs[0].Type)
	kvs, _, err := leader.Range(ctx, "svc/", Linearizable)
	require.NoError(t, err)
	require.Len(t, kvs, 1)
	assert.Equal(t, "detached", string(kvs[0].Value))
	_, err = leader.KeepAlive(ctx, g.ID)
	require.ErrorIs(t, err, ErrLeaseNotFound, "revoked")

	for _, n := range c.Nodes() {
		if n != leader {
			_, err := n.KeepAlive(ctx, g.ID)
			require.ErrorIs(t, err, ErrNotLeader)
		}
	}
}

// sweepOn runs the lease sweep on the current leader.
func sweepOn(t *testing.T, ctx context.Context, c *LocalCluster) int {
	t.Helper()
	for {
		l, err := c.WaitLeader(ctx)
		require.NoError(t, err)
		n, err := l.sweepLeases(ctx)
		if errors.Is(err, ErrNotLeader) {
			continue
		}
		require.NoError(t, err)
		return n
	}
}

// The bound, on a clock the test moves: a lease whose holder stopped at T
// is deleted at max(T, L) + TTL, L the moment the leader in office took it
// (its first sweep), never earlier, and not kept beyond.
func TestLease_ExpiryIsDecidedByTheLeaderAndALeaderChangeNeverExpiresEarly(t *testing.T) {
	clock := newManualClock()
	c := newCluster(t, ClusterOptions{Node: Options{Now: clock.Now, LeaseSweepInterval: time.Hour}})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	const ttl = time.Second

	// No leader change: deleted at T + TTL, not before.
	g, err := leader.GrantLease(ctx, ttl)
	require.NoError(t, err)
	_, err = leader.Put(ctx, "svc/a", []byte("1"), WithLease(g.ID))
	require.NoError(t, err)
	clock.Advance(ttl - time.Millisecond)
	require.Zero(t, sweepOn(t, ctx, c))
	_, err = leader.Get(ctx, "svc/a")
	require.NoError(t, err)
	clock.Advance(time.Millisecond)
	require.Equal(t, 1, sweepOn(t, ctx, c))
	for _, n := range c.Nodes() {
		eventually(t, ctx, "every replica deletes the key", func() bool {
			_, err := n.Read(ctx, "svc/a", Stale)
			return errors.Is(err, ErrKeyNotFound)
		})
	}

	// The leader crashes 900 ms into a lease's life and the election takes
	// 300 ms of the clock: the lease is past its old expiry when the new
	// leader takes office, yet it lives TTL from then.
	dead, err := leader.GrantLease(ctx, ttl)
	require.NoError(t, err)
	_, err = leader.Put(ctx, "svc/dead", []byte("1"), WithLease(dead.ID))
	require.NoError(t, err)
	kept, err := leader.GrantLease(ctx, ttl)
	require.NoError(t, err)
	clock.Advance(900 * time.Millisecond)
	require.NoError(t, c.Crash(leader.ID()))
	clock.Advance(300 * time.Millisecond)
	office := clock.Now()
	require.Zero(t, sweepOn(t, ctx, c), "nothing expires at a leader change")
	next, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	_, err = next.Get(ctx, "svc/dead")
	require.NoError(t, err)
	// The holder of kept, cut off during the election, keeps it alive.
	clock.Advance(100 * time.Millisecond)
	_, err = next.KeepAlive(ctx, kept.ID)
	require.NoError(t, err)

	clock.Advance(office.Add(ttl).Sub(clock.Now()) - time.Millisecond)
	require.Zero(t, sweepOn(t, ctx, c))
	_, err = next.Get(ctx, "svc/dead")
	require.NoError(t, err)
	clock.Advance(time.Millisecond)
	require.Equal(t, 1, sweepOn(t, ctx, c), "deleted at the moment the leader took office + TTL")
	_, err = next.Get(ctx, "svc/dead")
	require.ErrorIs(t, err, ErrKeyNotFound)
	_, err = next.KeepAlive(ctx, dead.ID)
	require.ErrorIs(t, err, ErrLeaseNotFound)
	_, err = next.KeepAlive(ctx, kept.ID)
	require.NoError(t, err, "the kept-alive lease survives")

	// The crashed node restarts and rebuilds the same state from the log.
	old, err := c.Restart(leader.ID())
	require.NoError(t, err)
	eventually(t, ctx, "restarted node deletes the expired key", func() bool {
		_, err := old.Read(ctx, "svc/dead", Stale)
		return errors.Is(err, ErrKeyNotFound)
	})
}

// With the real clock, the leader's own sweep deletes an abandoned lease's
// keys by itself, never before the lease's TTL.
func TestLease_SweepRunsOnTheLeader(t *testing.T) {
	const sweep = 10 * time.Millisecond
	c := newCluster(t, ClusterOptions{Node: Options{LeaseSweepInterval: sweep}})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	ttl := 3 * testTiming().HeartbeatTimeout
	g, err := leader.GrantLease(ctx, ttl)
	require.NoError(t, err)
	_, err = leader.Put(ctx, "svc/a", []byte("1"), WithLease(g.ID))
	require.NoError(t, err)
	w, err := leader.Watch("svc/a", WatchOptions{})
	require.NoError(t, err)
	evs, err := w.Recv(ctx)
	gone := time.Now()
	require.NoError(t, err)
	require.Equal(t, EventDelete, evs[0].Type)
	assert.False(t, gone.Before(g.Expires), "deleted at %v, before its expiry %v", gone, g.Expires)
	// The exact bound (TTL + a sweep interval from the last keep-alive or
	// the leader's election) is pinned on a manual clock by
	// TestLease_ExpiryIsDecidedByTheLeaderAndALeaderChangeNeverExpiresEarly;
	// here, on the real clock of a possibly busy machine, the sweep must
	// run by itself, long before anything else could delete the key.
	assert.Less(t, gone.Sub(g.Expires), 5*time.Second, "deleted by the leader's own sweep")
}

// A follower serves read-your-writes without the leader: a stale read after
// WaitApplied(rev) sees the write at rev, even over a slow link that keeps
// a plain stale read behind; over HTTP, ?stale=true&min_revision=rev.
func TestWaitApplied_FollowerReadYourWrites(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	var f *Node
	for _, n := range c.Nodes() {
		if n != leader {
			f = n
			break
		}
	}
	_, err = leader.Put(ctx, "k", []byte("old"))
	require.NoError(t, err)
	require.NoError(t, f.WaitApplied(ctx, leader.Stats().AppliedIndex))
	c.SetLatency(leader.ID(), f.ID(), 80*time.Millisecond) // f lags; the third node keeps the quorum fast
	kv, err := leader.Put(ctx, "k", []byte("new"))
	require.NoError(t, err)
	stale, err := f.Read(ctx, "k", Stale)
	require.NoError(t, err)
	assert.Equal(t, "old", string(stale.Value), "without waiting the lagging follower answers the old value")
	require.NoError(t, f.WaitApplied(ctx, kv.Revision))
	got, err := f.Read(ctx, "k", Stale)
	require.NoError(t, err)
	assert.Equal(t, "new", string(got.Value))

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, f.WaitApplied(short, kv.Revision+1000), context.DeadlineExceeded)
	c.Heal()
}

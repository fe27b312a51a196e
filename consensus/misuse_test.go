package consensus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// misuse is one call a caller can make on a value it should not have used.
type misuse struct {
	name string
	call func(ctx context.Context) error
}

// nodeCalls is every Node method that reports an error, called on n.
func nodeCalls(n *Node) []misuse {
	lease := Lease{Name: "l", Owner: "o", Token: 1}
	return []misuse{
		{"Get", func(ctx context.Context) error { _, err := n.Get(ctx, "k"); return err }},
		{"Read stale", func(ctx context.Context) error { _, err := n.Read(ctx, "k", Stale); return err }},
		{"List", func(ctx context.Context) error { _, err := n.List(ctx, "", Linearizable); return err }},
		{"List stale", func(ctx context.Context) error { _, err := n.List(ctx, "", Stale); return err }},
		{"Put", func(ctx context.Context) error { _, err := n.Put(ctx, "k", []byte("v")); return err }},
		{"Create", func(ctx context.Context) error { _, err := n.Create(ctx, "k", []byte("v")); return err }},
		{"CompareAndSwap", func(ctx context.Context) error {
			_, err := n.CompareAndSwap(ctx, "k", []byte("v"), []byte("w"))
			return err
		}},
		{"Delete", func(ctx context.Context) error { _, err := n.Delete(ctx, "k"); return err }},
		{"SetAPIAddr", func(ctx context.Context) error { return n.SetAPIAddr(ctx, "n1", "127.0.0.1:1") }},
		{"AcquireLock", func(ctx context.Context) error { _, err := n.AcquireLock(ctx, "l", "o", time.Second); return err }},
		{"RenewLock", func(ctx context.Context) error { _, err := n.RenewLock(ctx, lease, time.Second); return err }},
		{"ReleaseLock", func(ctx context.Context) error { return n.ReleaseLock(ctx, lease) }},
		{"PutFenced", func(ctx context.Context) error { _, err := n.PutFenced(ctx, lease, "k", []byte("v")); return err }},
		{"LockHolder", func(ctx context.Context) error { _, _, err := n.LockHolder(ctx, "l", Linearizable); return err }},
		{"LockHolder stale", func(ctx context.Context) error { _, _, err := n.LockHolder(ctx, "l", Stale); return err }},
		{"Bootstrap", func(ctx context.Context) error { return n.Bootstrap(ctx) }},
		{"Servers", func(ctx context.Context) error { _, err := n.Servers(ctx); return err }},
		{"AddVoter", func(ctx context.Context) error { return n.AddVoter(ctx, "other", "other:1") }},
		{"AddNonVoter", func(ctx context.Context) error { return n.AddNonVoter(ctx, "other", "other:1") }},
		{"RemoveServer", func(ctx context.Context) error { return n.RemoveServer(ctx, "other") }},
		{"TransferLeadership", func(ctx context.Context) error { return n.TransferLeadership(ctx, "") }},
		{"TransferLeadership to", func(ctx context.Context) error { return n.TransferLeadership(ctx, "other") }},
		{"Leave", func(ctx context.Context) error { return n.Leave(ctx) }},
		{"Snapshot", func(ctx context.Context) error { return n.Snapshot(ctx) }},
		{"WhileLeader", func(ctx context.Context) error {
			return n.WhileLeader(ctx, func(context.Context) error { return nil })
		}},
	}
}

// callAtOnce runs call and returns its error, failing the test if it
// panics or has not returned within a few seconds.
func callAtOnce(t *testing.T, name string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v", p)
			}
		}()
		done <- call()
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s blocked", name)
		return nil
	}
}

// A zero Node (one not made by NewNode) fails every call with ErrClosed at
// once, instead of panicking on its missing Raft instance; its accessors
// report nothing and Close has nothing to do.
// It runs on the real clock: a call blocked on the Node's mutex is not
// durably blocked, so a synctest bubble would hang rather than fail.
func TestNode_ZeroValueFailsEveryCall(t *testing.T) {
	for _, n := range []*Node{new(Node), nil} {
		for _, m := range nodeCalls(n) {
			err := callAtOnce(t, m.name, func() error { return m.call(context.Background()) })
			assert.ErrorIs(t, err, ErrClosed, "%s on Node %p", m.name, n)
		}
		for name, call := range map[string]func(){
			"ID":       func() { assert.Empty(t, n.ID()) },
			"Addr":     func() { assert.Empty(t, n.Addr()) },
			"IsLeader": func() { assert.False(t, n.IsLeader()) },
			"Leader": func() {
				id, addr := n.Leader()
				assert.Empty(t, id+addr)
			},
			"APIAddr": func() { assert.Empty(t, n.APIAddr("n1")) },
			"Stats":   func() { assert.Equal(t, Stats{}, n.Stats()) },
			"Subscribe": func() {
				for range n.Subscribe(context.Background()) {
					t.Error("a zero Node delivered a leader state")
				}
			},
			"Close": func() {
				assert.NoError(t, n.Close(context.Background()))
				assert.NoError(t, n.Close(context.Background()))
			},
		} {
			err := callAtOnce(t, name, func() error { call(); return nil })
			assert.NoError(t, err, "%s on Node %p", name, n)
		}
	}
}

// closedNode starts a single-node cluster of one in-memory node, waits for
// it to lead, and closes it.
func closedNode(t *testing.T) *Node {
	t.Helper()
	c, err := NewLocalCluster(testCtx(t), ClusterOptions{Nodes: 1, Node: Options{Timing: testTiming()}})
	require.NoError(t, err)
	n := c.Nodes()[0]
	require.NoError(t, c.Close(context.Background()))
	return n
}

// After Close, every call fails at once with ErrClosed (not a
// NotLeaderError, not a hang), even with a context that never ends.
func TestNode_CallsAfterCloseFailWithErrClosed(t *testing.T) {
	n := closedNode(t)
	for _, m := range nodeCalls(n) {
		err := callAtOnce(t, m.name, func() error { return m.call(context.Background()) })
		assert.ErrorIs(t, err, ErrClosed, "%s after Close", m.name)
	}
	require.NoError(t, callAtOnce(t, "Close", func() error { return n.Close(context.Background()) }), "a second Close")
	err := callAtOnce(t, "Subscribe", func() error {
		for range n.Subscribe(context.Background()) {
			return errors.New("Subscribe after Close delivered a state")
		}
		return nil
	})
	assert.NoError(t, err)
	assert.False(t, n.IsLeader())
	assert.Equal(t, "n1", n.Stats().ID)
}

// A nil context or a nil function is bad input, reported at once.
func TestNode_NilArgumentsFail(t *testing.T) {
	c := newCluster(t, ClusterOptions{Nodes: 1})
	n, err := c.WaitLeader(testCtx(t))
	require.NoError(t, err)
	for _, m := range nodeCalls(n) {
		err := callAtOnce(t, m.name, func() error { return m.call(nil) })
		assert.ErrorIs(t, err, ErrInvalidArgument, "%s with a nil context", m.name)
	}
	err = callAtOnce(t, "Subscribe", func() error {
		//lint:ignore SA1012 a nil context is the misuse under test
		for range n.Subscribe(nil) {
			return errors.New("Subscribe with a nil context delivered a state")
		}
		return nil
	})
	assert.NoError(t, err)
	err = callAtOnce(t, "WhileLeader", func() error { return n.WhileLeader(testCtx(t), nil) })
	assert.ErrorIs(t, err, ErrInvalidArgument, "WhileLeader with a nil function")
	kv, err := n.Put(testCtx(t), "k", []byte("still works"))
	require.NoError(t, err)
	assert.Equal(t, "still works", string(kv.Value))
}

// A zero LocalCluster has no nodes: waiting for a leader or adding a node
// fails at once with ErrClosed instead of waiting forever or panicking, the
// fault methods do nothing, and unknown nodes are named in the error.
func TestLocalCluster_ZeroValueFailsAtOnce(t *testing.T) {
	for _, c := range []*LocalCluster{new(LocalCluster), nil} {
		ctx := context.Background()
		err := callAtOnce(t, "WaitLeader", func() error { _, err := c.WaitLeader(ctx); return err })
		assert.ErrorIs(t, err, ErrClosed)
		err = callAtOnce(t, "AddNode", func() error { _, err := c.AddNode(ctx, false); return err })
		assert.ErrorIs(t, err, ErrClosed)
		err = callAtOnce(t, "RemoveNode", func() error { return c.RemoveNode(ctx, "n1") })
		assert.ErrorIs(t, err, ErrClosed)
		err = callAtOnce(t, "Failover", func() error { _, err := c.Failover(ctx); return err })
		assert.ErrorIs(t, err, ErrClosed)
		err = callAtOnce(t, "Crash", func() error { return c.Crash("n1") })
		assert.ErrorIs(t, err, ErrClosed)
		err = callAtOnce(t, "Restart", func() error { _, err := c.Restart("n1"); return err })
		assert.ErrorIs(t, err, ErrClosed)
		err = callAtOnce(t, "faults", func() error {
			c.Partition([]string{"n1"}, []string{"n2"})
			c.Isolate("n1")
			c.CutLink("n1", "n2")
			c.SetLatency("n1", "n2", time.Millisecond)
			c.Heal()
			if c.Node("n1") != nil || len(c.Nodes()) != 0 || c.Leader() != nil || len(c.IDs()) != 0 {
				return errors.New("a zero LocalCluster reports nodes")
			}
			return errors.Join(c.Close(context.Background()), c.Close(context.Background()))
		})
		assert.NoError(t, err)
	}
}

// After Close, the cluster's calls fail at once with ErrClosed: none waits
// for a leader that will never come, and none starts a node that nothing
// would stop (goleak in TestMain catches one).
func TestLocalCluster_CallsAfterCloseFail(t *testing.T) {
	c, err := NewLocalCluster(testCtx(t), ClusterOptions{Nodes: 2, Node: Options{Timing: testTiming()}})
	require.NoError(t, err)
	require.NoError(t, c.Crash("n2"))
	require.NoError(t, c.Close(context.Background()))
	ctx := context.Background()
	err = callAtOnce(t, "WaitLeader", func() error { _, err := c.WaitLeader(ctx); return err })
	assert.ErrorIs(t, err, ErrClosed)
	err = callAtOnce(t, "AddNode", func() error { _, err := c.AddNode(ctx, true); return err })
	assert.ErrorIs(t, err, ErrClosed)
	err = callAtOnce(t, "RemoveNode", func() error { return c.RemoveNode(ctx, "n1") })
	assert.ErrorIs(t, err, ErrClosed)
	err = callAtOnce(t, "Failover", func() error { _, err := c.Failover(ctx); return err })
	assert.ErrorIs(t, err, ErrClosed)
	err = callAtOnce(t, "Restart", func() error { _, err := c.Restart("n2"); return err })
	assert.ErrorIs(t, err, ErrClosed, "restart of a crashed node after Close")
	err = callAtOnce(t, "Crash", func() error { return c.Crash("n1") })
	assert.ErrorIs(t, err, ErrClosed)
	assert.NoError(t, c.Close(context.Background()), "a second Close")
}

// Misuse of a live cluster names the node at once.
func TestLocalCluster_UnknownNodes(t *testing.T) {
	c := newCluster(t, ClusterOptions{Nodes: 1})
	err := c.Crash("n9")
	assert.ErrorIs(t, err, ErrUnknownNode)
	assert.ErrorContains(t, err, `"n9"`)
	_, err = c.Restart("n1")
	assert.ErrorIs(t, err, ErrUnknownNode, "restart of a running node")
	_, err = c.Restart("n9")
	assert.ErrorIs(t, err, ErrUnknownNode)
	//lint:ignore SA1012 a nil context is the misuse under test
	_, err = c.WaitLeader(nil)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	require.NoError(t, c.Crash("n1"))
	assert.ErrorIs(t, c.Crash("n1"), ErrUnknownNode, "a second crash")
	err = callAtOnce(t, "WaitLeader", func() error {
		//lint:ignore SA1012 a nil context is the misuse under test
		_, err := c.WaitLeader(nil)
		return err
	})
	assert.ErrorIs(t, err, ErrInvalidArgument, "WaitLeader with a nil context and no leader")
	//lint:ignore SA1012 a nil context is the misuse under test
	_, err = c.AddNode(nil, false)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.Len(t, c.IDs(), 1, "no node started for a nil context")
	_, err = c.Restart("n1")
	require.NoError(t, err)
	_, err = c.WaitLeader(testCtx(t))
	require.NoError(t, err)
}

// A zero Handler answers 500 with a JSON error instead of panicking, and a
// Handler of a closed node answers 503 at once.
func TestHandler_ZeroValueAndClosedNode(t *testing.T) {
	for _, h := range []*Handler{new(Handler), nil} {
		rec := httptest.NewRecorder()
		err := callAtOnce(t, "ServeHTTP", func() error {
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/cluster/status", nil))
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, http.StatusInternalServerError, rec.Code)
		assert.Contains(t, rec.Body.String(), `"error":"consensus: `)
	}
	for _, n := range []*Node{closedNode(t), new(Node)} {
		h, err := NewHandler(n, HandlerOptions{})
		require.NoError(t, err)
		for _, r := range []*http.Request{
			httptest.NewRequest("GET", "/v1/kv/k", nil),
			httptest.NewRequest("PUT", "/v1/kv/k", strings.NewReader(`{"value":"v"}`)),
			httptest.NewRequest("GET", "/v1/cluster/status", nil),
		} {
			rec := httptest.NewRecorder()
			err := callAtOnce(t, r.Method+" "+r.URL.Path, func() error { h.ServeHTTP(rec, r); return nil })
			require.NoError(t, err)
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "%s %s: %s", r.Method, r.URL.Path, rec.Body)
		}
	}
}

// Releasing a lock twice fails the second time with ErrLeaseLost, naming
// the lock, and never frees a later holder's lock.
func TestLock_ReleasedTwice(t *testing.T) {
	c := newCluster(t, ClusterOptions{Nodes: 1})
	ctx := testCtx(t)
	n, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	a, err := n.AcquireLock(ctx, "job", "alice", time.Minute)
	require.NoError(t, err)
	require.NoError(t, n.ReleaseLock(ctx, a))
	err = n.ReleaseLock(ctx, a)
	assert.ErrorIs(t, err, ErrLeaseLost)
	assert.ErrorContains(t, err, `"job"`)
	b, err := n.AcquireLock(ctx, "job", "alice", time.Minute)
	require.NoError(t, err)
	assert.ErrorIs(t, n.ReleaseLock(ctx, a), ErrLeaseLost, "the old lease of the same owner")
	holder, ok, err := n.LockHolder(ctx, "job", Linearizable)
	require.NoError(t, err)
	require.True(t, ok, "the new lease survives a stale release")
	assert.Equal(t, b.Token, holder.Token)
}

// Removing the only voter of a cluster, which has no one to hand
// leadership to, is refused at once rather than retried forever.
func TestLocalCluster_RemoveOnlyVoter(t *testing.T) {
	c := newCluster(t, ClusterOptions{Nodes: 1})
	ctx := testCtx(t)
	_, err := c.AddNode(ctx, true)
	require.NoError(t, err)
	err = callAtOnce(t, "RemoveNode", func() error { return c.RemoveNode(context.Background(), "n1") })
	assert.ErrorIs(t, err, ErrInvalidArgument)
	assert.ErrorContains(t, err, `"n1"`)
}

// A slow link delays RPCs, not shutdown: closing the cluster (or crashing a
// node) whose links have an hour of latency returns at once.
func TestLocalCluster_CloseDoesNotWaitOutLatency(t *testing.T) {
	c, err := NewLocalCluster(testCtx(t), ClusterOptions{Nodes: 3, Node: Options{Timing: testTiming()}})
	require.NoError(t, err)
	for _, a := range c.IDs() {
		for _, b := range c.IDs() {
			c.SetLatency(a, b, time.Hour)
		}
	}
	time.Sleep(testTiming().HeartbeatTimeout) // heartbeats and campaigns are under way, delayed
	require.NoError(t, callAtOnce(t, "Crash", func() error { return c.Crash("n1") }))
	require.NoError(t, callAtOnce(t, "Close", func() error { return c.Close(context.Background()) }))
}

// Failover ends with ErrClosed when the cluster closes while it waits for
// the old leader to rejoin, even with a context that never ends.
func TestLocalCluster_FailoverEndsOnClose(t *testing.T) {
	c, err := NewLocalCluster(testCtx(t), ClusterOptions{Nodes: 3, Node: Options{Timing: testTiming()}})
	require.NoError(t, err)
	old, err := c.WaitLeader(testCtx(t))
	require.NoError(t, err)
	for _, id := range c.IDs() {
		c.SetLatency(id, old.ID(), time.Hour) // the old leader never hears from its successor
	}
	done := make(chan error, 1)
	go func() { _, err := c.Failover(context.Background()); done <- err }()
	ctx := testCtx(t)
	eventually(t, ctx, "the new leader commits the failover write", func() bool {
		n, err := c.WaitLeader(ctx, old.ID())
		require.NoError(t, err)
		_, err = n.Read(ctx, "consensus/failover", Stale)
		return err == nil
	})
	require.NoError(t, c.Close(context.Background()))
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Failover blocked after Close")
	}
}

// The handler's Timeout bounds a request a follower forwards, even with a
// client that has no timeout of its own and a leader API that never
// answers: the follower answers 503 naming the leader.
func TestHandler_ForwardBoundedByTimeout(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	stuck := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stuck:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(stuck)
	require.NoError(t, leader.SetAPIAddr(ctx, leader.ID(), strings.TrimPrefix(hung.URL, "http://")))
	f := followerOf(t, c)
	eventually(t, ctx, "the follower knows the leader's API", func() bool { return f.APIAddr(leader.ID()) != "" })
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	h, err := NewHandler(f, HandlerOptions{Client: &http.Client{Transport: tr}, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	err = callAtOnce(t, "forwarded PUT", func() error {
		h.ServeHTTP(rec, httptest.NewRequest("PUT", "/v1/kv/k", strings.NewReader(`{"value":"v"}`)))
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"leader_id":"`+leader.ID()+`"`)
}

// Close honours its context: with one already done it returns at once —
// an error wrapping the context's, naming the node, unless the shutdown
// had already finished — and a later Close waits for the same shutdown.
func TestNode_CloseHonoursItsContext(t *testing.T) {
	c, err := NewLocalCluster(testCtx(t), ClusterOptions{Nodes: 3, Node: Options{Timing: testTiming()}})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close(context.Background())) })
	n := c.Nodes()[0]
	done, cancel := context.WithCancel(context.Background())
	cancel()
	err = callAtOnce(t, "Close", func() error { return n.Close(done) })
	if err != nil {
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorContains(t, err, fmt.Sprintf("%q", n.ID()))
	}
	require.NoError(t, n.Close(context.Background()), "the second Close waits for the shutdown and reports it")
	_, err = n.Put(context.Background(), "k", []byte("v"))
	assert.ErrorIs(t, err, ErrClosed)
}

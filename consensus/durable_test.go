package consensus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restartAll crashes every node of c, then starts each again from its
// data directory, and returns the new leader.
func restartAll(t *testing.T, ctx context.Context, c *LocalCluster) *Node {
	t.Helper()
	ids := c.IDs()
	for _, id := range ids {
		require.NoError(t, c.Crash(id))
	}
	for _, id := range ids {
		_, err := c.Restart(id)
		require.NoError(t, err, "restart %s from its data directory", id)
	}
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err, "the restarted cluster elects a leader")
	return leader
}

// A leader cut off with entries it never replicated rejoins, and the new
// leader's log replaces that tail; later the node, and then the whole
// cluster, restart from disk. Every node comes back with the committed
// writes, none of the lost ones.
func TestDurable_RestartAfterLogTailTruncated(t *testing.T) {
	for _, nodes := range []int{3, 5} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) { restartAfterLogTailTruncated(t, nodes) })
	}
}

func restartAfterLogTailTruncated(t *testing.T, nodes int) {
	c := newCluster(t, ClusterOptions{Nodes: nodes, DataDir: t.TempDir()})
	ctx := testCtx(t)
	putOnLeader(t, ctx, c, "k", "before")
	old, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	st := old.Stats()
	committed, term := st.LastIndex, st.Term

	c.Isolate(old.ID())
	// The cut-off leader appends these to its own log but cannot replicate
	// them: none may commit.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, errs[i] = old.Put(wctx, "k", []byte(fmt.Sprint("lost", i)))
		})
	}
	eventually(t, ctx, "the cut-off leader logs entries it cannot replicate", func() bool {
		return old.Stats().LastIndex > committed
	})
	wg.Wait()
	for _, err := range errs {
		require.Error(t, err)
		assert.True(t, errors.Is(err, ErrIndeterminate) || errors.Is(err, ErrNotLeader), "minority write: %v", err)
	}
	for i := range 3 {
		putOnLeader(t, ctx, c, "k", fmt.Sprint("after", i))
	}
	c.Heal()
	waitValue(t, ctx, old, "k", "after2")
	var e raft.Log
	require.NoError(t, old.store.logs.GetLog(committed+1, &e))
	require.Greater(t, e.Term, term, "the old leader's unreplicated tail was replaced by the new leader's entries")

	require.NoError(t, c.Crash(old.ID()))
	n, err := c.Restart(old.ID())
	require.NoError(t, err, "the node whose log tail was truncated restarts from disk")
	waitValue(t, ctx, n, "k", "after2")

	restartAll(t, ctx, c)
	// Five nodes restarting at once may still change leader: a linearizable
	// read that lost its leader is safe to retry on the next one.
	var kv KV
	eventually(t, ctx, "a linearizable read of the restarted cluster", func() bool {
		leader, err := c.WaitLeader(ctx)
		if err != nil {
			return false
		}
		kv, err = leader.Get(ctx, "k")
		return err == nil
	})
	assert.Equal(t, "after2", string(kv.Value))
	for _, n := range c.Nodes() {
		waitValue(t, ctx, n, "k", "after2")
	}
}

// reopenCluster starts a cluster on the data directory of an earlier one
// (same size, in-memory network): the nodes rejoin from disk.
func reopenCluster(t *testing.T, ctx context.Context, dir string, nodes int) *LocalCluster {
	t.Helper()
	c, err := NewLocalCluster(ctx, ClusterOptions{Nodes: nodes, DataDir: dir, Node: Options{Timing: testTiming()}})
	require.NoError(t, err, "the cluster reopened from disk elects a leader")
	t.Cleanup(func() { assert.NoError(t, c.Close(context.Background())) })
	return c
}

// crashChildEnv names the data directory of the cluster the crash test's
// child process runs, until it is killed.
const crashChildEnv = "CONSENSUS_CRASH_CHILD_DIR"

// Not a test by itself: the child process of
// TestDurable_KilledClusterKeepsAcknowledgedWrites. It runs a durable
// cluster and writers, and prints every acknowledged write, until killed.
func TestDurable_CrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("the child process of TestDurable_KilledClusterKeepsAcknowledgedWrites")
	}
	c := newCluster(t, ClusterOptions{DataDir: dir, Node: Options{SnapshotThreshold: 64, TrailingLogs: 16, SnapshotInterval: 50 * time.Millisecond}})
	var mu sync.Mutex // one line at a time on stdout
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			key := fmt.Sprintf("w%d", w)
			for i := 1; ; i++ {
				n := c.Leader()
				if n == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				if _, err := n.Put(context.Background(), key, []byte(strconv.Itoa(i))); err == nil {
					mu.Lock()
					fmt.Printf("ack %s %d\n", key, i)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait() // never: the parent kills the process
}

// Every process of a durable cluster is killed (SIGKILL, no shutdown at
// all) while clients write; the cluster reopened from its data directories
// has every acknowledged write.
func TestDurable_KilledClusterKeepsAcknowledgedWrites(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	ctx := testCtx(t)
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDurable_CrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	acked := map[string]int{}
	lines := bufio.NewScanner(out)
	total := 0
	for total < 300 && lines.Scan() {
		var key string
		var i int
		if _, err := fmt.Sscanf(lines.Text(), "ack %s %d", &key, &i); err == nil {
			acked[key] = max(acked[key], i)
			total++
		}
	}
	require.Equal(t, 300, total, "the child acknowledged writes until killed")
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.Len(t, acked, 4, "every writer had writes acknowledged before the kill")

	c := reopenCluster(t, ctx, dir, 3)
	for key, want := range acked {
		var kv KV
		require.NoError(t, retryOnLeader(ctx, c, func(n *Node) error {
			kv, err = n.Get(ctx, key)
			return err
		}))
		got, _ := strconv.Atoi(string(kv.Value))
		// A later write whose acknowledgement the kill cut off may have
		// committed too.
		assert.GreaterOrEqual(t, got, want, "%s: acknowledged %d", key, want)
	}
}

// A node restarts from its latest snapshot plus the log written after it:
// the snapshot's state is there at once, before any leader speaks, and the
// log's entries once the cluster has a leader.
func TestDurable_RestartFromSnapshotAndLog(t *testing.T) {
	c := newCluster(t, ClusterOptions{DataDir: t.TempDir(), Node: Options{TrailingLogs: 4}})
	ctx := testCtx(t)
	for i := range 20 {
		putOnLeader(t, ctx, c, fmt.Sprintf("k%d", i), fmt.Sprint(i))
	}
	for _, n := range c.Nodes() {
		waitValue(t, ctx, n, "k19", "19")
		require.NoError(t, n.Snapshot(ctx))
	}
	for i := range 5 {
		putOnLeader(t, ctx, c, "tail", fmt.Sprint(i))
	}
	for _, n := range c.Nodes() {
		waitValue(t, ctx, n, "tail", "4")
	}
	ids := c.IDs()
	for _, id := range ids {
		require.NoError(t, c.Crash(id))
	}
	for _, id := range ids {
		n, err := c.Restart(id)
		require.NoError(t, err)
		st := n.Stats()
		assert.Positive(t, st.LastSnapshotIndex, "%s restored a snapshot", id)
		assert.Greater(t, st.LastIndex, st.LastSnapshotIndex, "%s has log entries after its snapshot", id)
		kv, err := n.Read(ctx, "k19", Stale)
		require.NoError(t, err, "%s serves the snapshot's state before any leader speaks", id)
		assert.Equal(t, "19", string(kv.Value))
	}
	for _, n := range c.Nodes() {
		waitValue(t, ctx, n, "k0", "0")
		waitValue(t, ctx, n, "tail", "4")
	}
}

// A second node on a data directory in use fails at once with an error
// naming the log file, instead of waiting forever for its lock.
func TestDurable_DataDirInUse(t *testing.T) {
	dir := t.TempDir()
	_, tr := raft.NewInmemTransport("a")
	n, err := NewNode(Options{ID: "a", Transport: tr, DataDir: dir, Timing: testTiming()})
	require.NoError(t, err)
	defer n.Close(context.Background())
	_, tr2 := raft.NewInmemTransport("b")
	_, err = NewNode(Options{ID: "b", Transport: tr2, DataDir: dir, Timing: testTiming()})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), filepath.Join(dir, logFile))
}

// A data directory written by the raft-wal log of earlier versions is
// refused: starting without its log would lose the node's term and vote.
func TestDurable_RefusesRaftWALDataDir(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "wal"), 0o700))
	_, tr := raft.NewInmemTransport("a")
	_, err := NewNode(Options{ID: "a", Transport: tr, DataDir: dir})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), dir)
}

// A durable cluster closed and started again on the same DataDir reopens
// its nodes from disk: its data is there and its revisions go on.
func TestDurable_ClusterReopensFromItsDataDir(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	first, err := NewLocalCluster(ctx, ClusterOptions{DataDir: dir, Node: Options{Timing: testTiming()}})
	require.NoError(t, err)
	kv := putOnLeader(t, ctx, first, "k", "v")
	require.NoError(t, first.Close(ctx))

	c := reopenCluster(t, ctx, dir, 3)
	var got KV
	require.NoError(t, retryOnLeader(ctx, c, func(n *Node) error {
		got, err = n.Get(ctx, "k")
		return err
	}))
	assert.Equal(t, kv, got)
	assert.Greater(t, putOnLeader(t, ctx, c, "k2", "v").Revision, kv.Revision)
}

package consensus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func applyTo(f *fsm, i uint64, c command) applyResult {
	return f.Apply(&raft.Log{Index: i, Data: c.encode()}).(applyResult)
}

func TestFSM_HistoryIsBoundedCompactsWholeRevisionsAndSurvivesSnapshots(t *testing.T) {
	f := newFSM()
	f.maxHistory = 4
	applyTo(f, 1, command{op: opPut, key: "a", value: []byte("1")})
	applyTo(f, 2, command{op: opPut, key: "b", value: []byte("1")})
	applyTo(f, 3, command{op: opNoop})
	applyTo(f, 4, command{op: opDelete, key: "a"})
	w := &Watcher{key: "", prefix: true, next: 1}
	evs, _, err := f.events(w)
	require.NoError(t, err)
	require.Len(t, evs, 3)
	assert.Equal(t, Event{Type: EventPut, KV: KV{Key: "a", Value: []byte("1"), Revision: 1, CreateRevision: 1, Version: 1}}, evs[0])
	assert.Equal(t, Event{Type: EventDelete, KV: KV{Key: "a", Revision: 4}}, evs[2])
	assert.Equal(t, uint64(5), w.Revision(), "the watcher moves past every applied index")

	// A lease revoked with three keys is one revision of three events;
	// the bound compacts it whole, never half.
	g := applyTo(f, 5, command{op: opLeaseGrant, ttl: 100, now: 0}).grant
	for i, k := range []string{"x", "y", "z"} {
		applyTo(f, uint64(6+i), command{op: opPut, key: k, value: []byte("v"), lease: uint64(g.ID)})
	}
	applyTo(f, 9, command{op: opLeaseRevoke, lease: uint64(g.ID)})
	_, first := f.revisions()
	assert.Equal(t, uint64(8), first, "the bound of 4 events keeps revision 8 and revision 9's three")
	_, _, err = f.events(&Watcher{prefix: true, next: 7})
	assert.ErrorIs(t, err, ErrCompacted)
	evs, _, err = f.events(&Watcher{prefix: true, next: 9})
	require.NoError(t, err)
	require.Len(t, evs, 3)
	for i, k := range []string{"x", "y", "z"} {
		assert.Equal(t, Event{Type: EventDelete, KV: KV{Key: k, Revision: 9}}, evs[i])
	}

	snap, err := f.Snapshot()
	require.NoError(t, err)
	var sink memSink
	require.NoError(t, snap.Persist(&sink))
	h := newFSM()
	require.NoError(t, h.Restore(io.NopCloser(&sink)))
	got, _, err := h.events(&Watcher{prefix: true, next: 9})
	require.NoError(t, err)
	assert.Equal(t, evs, got)
	_, first = h.revisions()
	assert.Equal(t, uint64(8), first)
	f.maxHistory = 2
	applyTo(f, 10, command{op: opPut, key: "w", value: []byte("v")})
	_, first = f.revisions()
	assert.Equal(t, uint64(10), first, "compaction drops revision 9 whole, not two of its three events")

	// A snapshot from before watches existed starts the history after it.
	old := newFSM()
	require.NoError(t, old.Restore(io.NopCloser(bytes.NewReader([]byte(`{"kv":{},"applied":7}`)))))
	_, first = old.revisions()
	assert.Equal(t, uint64(8), first)

	// Compaction through the log; not beyond the store.
	f.maxHistory = 100
	assert.ErrorIs(t, applyTo(f, 11, command{op: opCompact, token: 13}).err, ErrFutureRevision)
	require.NoError(t, applyTo(f, 12, command{op: opCompact, token: 11}).err)
	_, first = f.revisions()
	assert.Equal(t, uint64(11), first)
}

// resume starts a watch from rev on the first running node that accepts
// it, as a client that lost its node does; nil when ctx ends first.
func resume(ctx context.Context, c *LocalCluster, rev uint64) *Watcher {
	for ctx.Err() == nil {
		for _, n := range c.Nodes() {
			if w, err := n.Watch("svc/", WatchOptions{Prefix: true, From: rev}); err == nil {
				return w
			}
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// checkEvents asserts that got is a gap-free, duplicate-free,
// in-order copy of want from want's first revision on.
func checkEvents(t *testing.T, name string, want, got []Event) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		require.LessOrEqual(t, got[i-1].KV.Revision, got[i].KV.Revision, "%s: out of order at %d", name, i)
		require.False(t, got[i-1].KV.Revision == got[i].KV.Revision && got[i-1].KV.Key == got[i].KV.Key, "%s: duplicate %v", name, got[i])
	}
	require.Equal(t, want, got, "%s: not the committed history", name)
}

// Watchers on the leader and on the followers, some moving to another node
// when theirs crashes, see the same gap-free, duplicate-free sequence as
// the final history, through two leader changes and a restart; every
// acknowledged write is in it.
func TestWatch_OrderedNoGapsNoDuplicatesAcrossLeaderChangesAndRestarts(t *testing.T) {
	c := newCluster(t, ClusterOptions{})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	start, err := leader.Put(ctx, "other/x", []byte("not watched"))
	require.NoError(t, err)
	for _, n := range c.Nodes() {
		eventually(t, ctx, n.ID()+" has the first write", func() bool { return n.raft.LastIndex() >= start.Revision })
	}

	type result struct {
		name string
		evs  []Event
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	// One watcher per node, from the first revision after start. When its
	// node closes, a watcher resumes on another live node from
	// Watcher.Revision, as a client reconnecting would.
	for _, n := range c.Nodes() {
		w, err := n.Watch("svc/", WatchOptions{Prefix: true, From: start.Revision + 1})
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var all []Event
			for {
				evs, err := w.Recv(watchCtx)
				all = append(all, evs...)
				if len(evs) > 0 && evs[len(evs)-1].KV.Key == "svc/end" {
					break
				}
				if errors.Is(err, ErrClosed) { // resume on a live node
					w = resume(watchCtx, c, w.Revision())
				}
				if w == nil || (err != nil && !errors.Is(err, ErrClosed)) {
					break
				}
			}
			mu.Lock()
			results = append(results, result{n.ID(), all})
			mu.Unlock()
		}()
	}

	var acked sync.Map // revision → key, for every acknowledged write
	write := func(i int) {
		for {
			l, err := c.WaitLeader(ctx)
			require.NoError(t, err)
			key := fmt.Sprintf("svc/%d", i%7)
			var kv KV
			if i%5 == 4 {
				kv, err = l.Delete(ctx, key)
				if errors.Is(err, ErrKeyNotFound) {
					return
				}
			} else {
				kv, err = l.Put(ctx, key, []byte(fmt.Sprint(i)))
			}
			if err == nil {
				if i%5 != 4 {
					acked.Store(kv.Revision, key)
				}
				return
			}
			if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrIndeterminate) && !errors.Is(err, ErrClosed) {
				require.NoError(t, err)
			}
			if errors.Is(err, ErrIndeterminate) {
				return // may or may not be in the history; the history decides
			}
		}
	}
	for i := range 30 {
		write(i)
	}
	require.NoError(t, leader.TransferLeadership(ctx, ""))
	for i := 30; i < 60; i++ {
		write(i)
	}
	second, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Crash(second.ID()))
	for i := 60; i < 90; i++ {
		write(i)
	}
	restarted, err := c.Restart(second.ID())
	require.NoError(t, err)
	for i := 90; i < 120; i++ {
		write(i)
	}

	// The final history, read on the restarted node once it caught up
	// (its history was rebuilt from its log).
	final, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	last, err := final.Put(ctx, "svc/end", []byte("end"))
	require.NoError(t, err)
	eventually(t, ctx, "restarted node catches up", func() bool {
		applied, _ := restarted.fsm.appliedIndex()
		return applied >= last.Revision
	})
	rw, err := restarted.Watch("svc/", WatchOptions{Prefix: true, From: start.Revision + 1})
	require.NoError(t, err)
	want, _, err := restarted.fsm.events(rw)
	require.NoError(t, err)
	require.NotEmpty(t, want)
	wg.Wait()

	require.Len(t, results, 3)
	for _, r := range results {
		checkEvents(t, r.name, want, r.evs)
	}
	inHistory := map[uint64]string{}
	for _, e := range want {
		if e.Type == EventPut {
			inHistory[e.KV.Revision] = e.KV.Key
		}
	}
	acked.Range(func(rev, key any) bool {
		assert.Equal(t, key, inHistory[rev.(uint64)], "acknowledged write at revision %d missing", rev)
		return true
	})
}

func TestWatch_CompactedAndFutureRevisionsAndRelist(t *testing.T) {
	c := newCluster(t, ClusterOptions{Node: Options{WatchHistory: 5}})
	ctx := testCtx(t)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	first, err := leader.Put(ctx, "k/0", []byte("0"))
	require.NoError(t, err)
	for i := 1; i < 10; i++ {
		_, err := leader.Put(ctx, fmt.Sprintf("k/%d", i), []byte("v"))
		require.NoError(t, err)
	}
	_, err = leader.Watch("k/", WatchOptions{Prefix: true, From: first.Revision})
	require.ErrorIs(t, err, ErrCompacted)
	assert.Contains(t, err.Error(), fmt.Sprint(first.Revision))

	kvs, rev, err := leader.Range(ctx, "k/", Linearizable)
	require.NoError(t, err)
	require.Len(t, kvs, 10)
	_, err = leader.Watch("k/", WatchOptions{Prefix: true, From: rev + 1000})
	require.ErrorIs(t, err, ErrFutureRevision)
	_, err = leader.Watch("", WatchOptions{})
	require.ErrorIs(t, err, ErrInvalidArgument)

	// Re-list and resume: the watch from the listing's revision sees
	// exactly the later change.
	w, err := leader.Watch("k/", WatchOptions{Prefix: true, From: rev + 1})
	require.NoError(t, err)
	put, err := leader.Put(ctx, "k/3", []byte("new"))
	require.NoError(t, err)
	evs, err := w.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, []Event{{Type: EventPut, KV: put}}, evs)

	// A single-key watch ignores its neighbours; From zero means "from now".
	one, err := leader.Watch("k/3", WatchOptions{})
	require.NoError(t, err)
	_, err = leader.Put(ctx, "k/30", []byte("neighbour"))
	require.NoError(t, err)
	del, err := leader.Delete(ctx, "k/3")
	require.NoError(t, err)
	evs, err = one.Recv(ctx)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, Event{Type: EventDelete, KV: KV{Key: "k/3", Revision: evs[0].KV.Revision}}, evs[0])
	assert.Greater(t, evs[0].KV.Revision, del.Revision)

	// A watcher that falls behind the bounded history fails, naming why.
	slow, err := leader.Watch("k/", WatchOptions{Prefix: true})
	require.NoError(t, err)
	for i := range 8 {
		_, err := leader.Put(ctx, fmt.Sprintf("k/%d", i), []byte("again"))
		require.NoError(t, err)
	}
	_, err = slow.Recv(ctx)
	require.ErrorIs(t, err, ErrCompacted)

	// Compaction through the log reaches every node.
	_, rev, err = leader.Range(ctx, "", Linearizable)
	require.NoError(t, err)
	require.NoError(t, leader.Compact(ctx, rev))
	for _, n := range c.Nodes() {
		eventually(t, ctx, "compaction applied on "+n.ID(), func() bool {
			_, err := n.Watch("k/", WatchOptions{Prefix: true, From: rev - 1})
			return errors.Is(err, ErrCompacted)
		})
	}
	_, err = leader.Watch("k/", WatchOptions{Prefix: true, From: rev})
	require.NoError(t, err, "the history from the compaction's revision on is kept")
	require.ErrorIs(t, leader.Compact(ctx, rev+1000), ErrFutureRevision)

	// Recv ends with the context, and with ErrClosed when the node closes.
	short, cancel := context.WithCancel(ctx)
	cancel()
	w, err = leader.Watch("k/", WatchOptions{Prefix: true})
	require.NoError(t, err)
	_, err = w.Recv(short)
	require.ErrorIs(t, err, context.Canceled)
	f := c.Nodes()[0]
	if f == leader {
		f = c.Nodes()[1]
	}
	fw, err := f.Watch("k/", WatchOptions{Prefix: true})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { _, err := fw.Recv(ctx); done <- err }()
	require.NoError(t, c.Crash(f.ID()))
	require.ErrorIs(t, <-done, ErrClosed)
}

// A compaction may reach the revision after the newest, dropping every
// event, and no further.
func TestFSM_CompactUpToTheNextRevision(t *testing.T) {
	f := newFSM()
	applyTo(f, 1, command{op: opPut, key: "a", value: []byte("1")})
	applyTo(f, 2, command{op: opPut, key: "a", value: []byte("2")})
	// The compaction's own entry is the store's newest revision.
	r := applyTo(f, 3, command{op: opCompact, token: 5})
	require.ErrorIs(t, r.err, ErrFutureRevision, "two past revision 3")
	r = applyTo(f, 4, command{op: opCompact, token: 5})
	require.NoError(t, r.err, "one past revision 4")
	_, first := f.revisions()
	assert.Equal(t, uint64(5), first)
	_, _, err := f.events(&Watcher{prefix: true, next: 3})
	assert.ErrorIs(t, err, ErrCompacted)
}

// One Recv returns at most maxBatch events, ending at a revision's end:
// a revision that straddles the bound comes whole, past it.
func TestFSM_EventBatchesEndAtRevisions(t *testing.T) {
	for _, c := range []struct {
		name   string
		before int // put events before the three under a lease, then revoked at one revision
		batch  int
	}{
		{"the bound falls between revisions", maxBatch - 3, maxBatch},
		{"a revision straddles the bound", maxBatch - 5, maxBatch + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFSM()
			i := uint64(0)
			apply := func(cmd command) applyResult { i++; return applyTo(f, i, cmd) }
			for j := range c.before {
				apply(command{op: opPut, key: fmt.Sprint("k", j), value: []byte("v")})
			}
			g := apply(command{op: opLeaseGrant, ttl: 100}).grant
			for _, k := range []string{"x", "y", "z"} {
				apply(command{op: opPut, key: k, value: []byte("v"), lease: uint64(g.ID)})
			}
			apply(command{op: opLeaseRevoke, lease: uint64(g.ID)}) // three events at one revision
			apply(command{op: opPut, key: "after", value: []byte("v")})
			w := &Watcher{prefix: true, next: 1}
			evs, _, err := f.events(w)
			require.NoError(t, err)
			require.Equal(t, c.batch, len(evs))
			last := evs[len(evs)-1].KV.Revision
			assert.Equal(t, last+1, w.Revision(), "the next batch starts after the last revision returned")
			rest, _, err := f.events(w)
			require.NoError(t, err)
			assert.Equal(t, c.before+3+3+1-c.batch, len(rest))
			assert.Greater(t, rest[0].KV.Revision, last)
		})
	}
}

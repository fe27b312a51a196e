package consensus

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// DefaultWatchHistory is how many events a node keeps for watches when
// [Options.WatchHistory] is zero.
const DefaultWatchHistory = 10000

// EventType says what a watch [Event] did to its key.
type EventType uint8

const (
	// EventPut is a write (Put, Create, CompareAndSwap, PutFenced).
	EventPut EventType = iota + 1
	// EventDelete is a deletion, by Delete or by the expiry or revocation
	// of the key's lease.
	EventDelete
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change to one key, as a watch delivers it.
type Event struct {
	Type EventType `json:"type"`
	// KV is the key's new state for a put. For a delete it holds the key
	// and, as Revision, the revision of the deletion.
	KV KV `json:"kv"`
}

// WatchOptions selects what a [Watcher] sees.
type WatchOptions struct {
	// Prefix makes the watch cover every key that starts with the
	// watched key, rather than that key alone.
	Prefix bool
	// From is the first revision to deliver. Zero means the next change
	// after the watch starts. To resume after an interruption, pass the
	// last revision seen plus one ([Watcher.Revision] tracks it); after a
	// [Node.Range], its revision plus one.
	From uint64
}

// Watcher delivers the changes to a key or a prefix, as etcd's watch does:
// in revision order, with no gap and no duplicate, every event of one
// revision together. A Watcher reads its node's own applied history, so a
// follower serves watches as well as the leader, and since every node
// applies the same log a client that moves to another node and resumes
// from [Watcher.Revision] sees the same sequence.
//
// It owns no goroutine and holds nothing but its position: [Watcher.Recv]
// reads the history when called. A watcher that falls behind by more than
// the node's history ([Options.WatchHistory], or [Node.Compact]) gets
// [ErrCompacted]; the client then re-lists with [Node.Range] and watches
// from the listing's revision plus one.
//
// A Watcher is not safe for concurrent use; use one per goroutine.
type Watcher struct {
	node   *Node
	key    string
	prefix bool
	next   uint64
}

// Watch starts a watch on key (or, with opts.Prefix, on every key that
// starts with key) from opts.From. It fails with [ErrCompacted] when
// opts.From is older than the node's history and with [ErrFutureRevision]
// when it lies beyond this node's log (a follower that lags may refuse a
// revision the leader has given out: retry, or use another node).
func (n *Node) Watch(key string, opts WatchOptions) (*Watcher, error) {
	if err := n.usable(context.Background()); err != nil {
		return nil, err
	}
	if key == "" && !opts.Prefix {
		return nil, fmt.Errorf("%w: watch of the empty key (set Prefix to watch every key)", ErrInvalidArgument)
	}
	applied, first := n.fsm.revisions()
	from := opts.From
	if from == 0 {
		from = applied + 1
	}
	// Every index up to the node's last log entry exists, or will once
	// committed; a revision past it was never given to a client by the
	// cluster as this node knows it (a lagging follower: retry later or
	// elsewhere).
	if known := max(applied, n.raft.LastIndex()); from > known+1 {
		return nil, fmt.Errorf("%w: watch from revision %d, node %q knows of the log up to %d", ErrFutureRevision, from, n.opts.ID, known)
	}
	if from < first {
		return nil, fmt.Errorf("%w: watch from revision %d, node %q keeps history from %d", ErrCompacted, from, n.opts.ID, first)
	}
	return &Watcher{node: n, key: key, prefix: opts.Prefix, next: from}, nil
}

// Revision returns the revision the next [Watcher.Recv] starts from: one
// past the last revision the watcher has read.
func (w *Watcher) Revision() uint64 { return w.next }

// maxBatch bounds the events one Recv returns (a revision is never split).
const maxBatch = 1024

// Recv waits until the watched keys change and returns the events, in
// revision order, every event of a revision together. It fails with
// ctx's error, [ErrClosed] when the node closes, or [ErrCompacted] when the
// history no longer holds [Watcher.Revision].
func (w *Watcher) Recv(ctx context.Context) ([]Event, error) {
	n := w.node
	if err := n.usable(ctx); err != nil {
		return nil, err
	}
	for {
		evs, ch, err := n.fsm.events(w)
		if err != nil || len(evs) > 0 {
			return evs, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("consensus: node %q: watch at revision %d: %w", n.opts.ID, w.next, ctx.Err())
		case <-n.done:
			return nil, fmt.Errorf("%w: node %q", ErrClosed, n.opts.ID)
		}
	}
}

func (w *Watcher) matches(key string) bool {
	if w.prefix {
		return strings.HasPrefix(key, w.key)
	}
	return key == w.key
}

// events returns the events w has not read that match it, and advances it
// past everything applied; with none, a channel closed at the next apply.
func (f *fsm) events(w *Watcher) ([]Event, <-chan struct{}, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if w.next < f.firstRev {
		return nil, nil, fmt.Errorf("%w: watch at revision %d, history starts at %d", ErrCompacted, w.next, f.firstRev)
	}
	i := sort.Search(len(f.history), func(i int) bool { return f.history[i].KV.Revision >= w.next })
	var out []Event
	for ; i < len(f.history); i++ {
		e := f.history[i]
		if len(out) >= maxBatch && e.KV.Revision != out[len(out)-1].KV.Revision {
			w.next = e.KV.Revision
			return out, nil, nil
		}
		if w.matches(e.KV.Key) {
			out = append(out, e)
		}
	}
	w.next = max(w.next, f.applied+1)
	return out, f.waitCh, nil
}

// record appends e to the history, compacting the oldest revisions past
// maxHistory; requires f.mu held.
func (f *fsm) record(e Event) {
	f.history = append(f.history, e)
	if over := len(f.history) - f.maxHistory; over > 0 {
		// Never split a revision: compaction drops every event of the
		// newest revision it touches.
		f.compactTo(f.history[over-1].KV.Revision + 1)
	}
}

// compactTo drops the history before revision rev; requires f.mu held.
func (f *fsm) compactTo(rev uint64) {
	if rev <= f.firstRev { // (or <: compacting to firstRev changes nothing)
		return
	}
	i := sort.Search(len(f.history), func(i int) bool { return f.history[i].KV.Revision >= rev })
	// Either branch drops the same events; which one only decides when
	// the dropped ones' memory is released.
	if i > len(f.history)/2 {
		f.history = slices.Clone(f.history[i:]) // release the dropped events
	} else {
		clear(f.history[:i])
		f.history = f.history[i:]
	}
	f.firstRev = rev
}

func (f *fsm) applyCompact(rev uint64) applyResult {
	if rev > f.applied+1 {
		return applyResult{err: fmt.Errorf("%w: compact to revision %d beyond the store's %d", ErrFutureRevision, rev, f.applied)}
	}
	f.compactTo(rev)
	return applyResult{}
}

// revisions returns the last applied index and the oldest revision in the
// history.
func (f *fsm) revisions() (applied, first uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied, f.firstRev
}

// Compact discards, on every node, the watch history before revision rev,
// as etcd's compaction does: watches from an older revision then fail with
// [ErrCompacted]. Each node also compacts by itself past
// [Options.WatchHistory] events. Call it on the leader.
func (n *Node) Compact(ctx context.Context, rev uint64) error {
	_, err := n.apply(ctx, &command{op: opCompact, token: rev})
	return err
}

// Range returns every key with the given prefix, sorted by key, and the
// store's revision at that moment: a watch from the revision plus one
// sees every later change, which is how a client lists and then follows
// (or re-lists after [ErrCompacted]).
func (n *Node) Range(ctx context.Context, prefix string, mode ReadMode) ([]KV, uint64, error) {
	if err := n.checkRead(ctx, mode); err != nil {
		return nil, 0, err
	}
	out, rev := n.fsm.listAt(prefix)
	slices.SortFunc(out, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return out, rev, nil
}

package consensus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
)

// ReadMode selects how a read is served.
type ReadMode int

const (
	// Linearizable reads (the default) return the latest committed write:
	// the leader confirms it still leads a quorum (VerifyLeader) after
	// noting its commit index, and waits for its state machine to reach
	// that index. Costs one heartbeat round trip; served by the leader only.
	Linearizable ReadMode = iota
	// Stale reads return this node's local state machine at once, on any
	// node. They may miss recent writes (a lagging follower, or a deposed
	// leader cut off from the majority): eventual consistency, for speed
	// and availability during partitions.
	Stale
)

func (m ReadMode) String() string {
	switch m {
	case Linearizable:
		return "linearizable"
	case Stale:
		return "stale"
	}
	return fmt.Sprintf("ReadMode(%d)", int(m))
}

// Get returns key's current value with a linearizable read. It fails with
// [ErrKeyNotFound] for a missing key and a [*NotLeaderError] on a follower.
func (n *Node) Get(ctx context.Context, key string) (KV, error) {
	return n.Read(ctx, key, Linearizable)
}

// Read returns key's value with the given consistency.
func (n *Node) Read(ctx context.Context, key string, mode ReadMode) (KV, error) {
	if err := n.checkRead(ctx, mode); err != nil {
		return KV{}, err
	}
	kv, ok := n.fsm.get(key)
	if !ok {
		return KV{}, fmt.Errorf("%w: %q", ErrKeyNotFound, key)
	}
	return kv, nil
}

// List returns every key with the given prefix, sorted by key.
func (n *Node) List(ctx context.Context, prefix string, mode ReadMode) ([]KV, error) {
	if err := n.checkRead(ctx, mode); err != nil {
		return nil, err
	}
	out := n.fsm.list(prefix)
	slices.SortFunc(out, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (n *Node) checkRead(ctx context.Context, mode ReadMode) error {
	if err := n.usable(ctx); err != nil {
		return err
	}
	switch mode {
	case Stale:
		n.staleReads.Add(1)
		return nil
	case Linearizable:
		n.linReads.Add(1)
		return n.readBarrier(ctx)
	}
	return fmt.Errorf("%w: read mode %d", ErrInvalidArgument, mode)
}

// readBarrier implements Raft's read-index protocol (Raft thesis §6.4): make
// sure an entry of this term is applied (a barrier, once per term), note the
// commit index, confirm leadership with a quorum, then wait until the state
// machine has applied up to the noted index.
func (n *Node) readBarrier(ctx context.Context) error {
	if n.raft.State() != raft.Leader {
		n.notLeader.Add(1)
		return n.notLeaderErr()
	}
	if err := n.termBarrier(ctx); err != nil {
		return err
	}
	readIndex := n.raft.CommitIndex()
	if err := n.wait(ctx, n.raft.VerifyLeader()); err != nil {
		return err
	}
	return n.WaitApplied(ctx, readIndex)
}

// termBarrier commits and applies one no-op command in the leader's current
// term, once per term: after it, the commit index covers every entry of
// earlier terms, and every later entry passes through the state machine, so
// its applied index can be compared with the commit index.
func (n *Node) termBarrier(ctx context.Context) error {
	term := n.raft.CurrentTerm()
	if n.barrierTerm.Load() == term {
		return nil
	}
	n.barrierMu.Lock()
	defer n.barrierMu.Unlock()
	if n.barrierTerm.Load() == term {
		return nil
	}
	if _, err := n.apply(ctx, &command{op: opNoop}); err != nil {
		return err
	}
	n.barrierTerm.Store(term)
	return nil
}

// WaitApplied waits until this node's state machine has applied revision
// rev (a [KV.Revision] or a [Node.Range] revision a client saw), so that a
// [Stale] read that follows on this node, leader or follower, reflects
// that write and every earlier one: read-your-writes without asking the
// leader. It fails with ctx's error (a follower cut off from the leader
// never gets there) or [ErrClosed].
func (n *Node) WaitApplied(ctx context.Context, rev uint64) error {
	if err := n.usable(ctx); err != nil {
		return err
	}
	for {
		applied, ch := n.fsm.appliedIndex()
		if applied >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("consensus: node %q: waiting for revision %d (applied %d): %w", n.opts.ID, rev, applied, ctx.Err())
		case <-n.done:
			return fmt.Errorf("%w: node %q", ErrClosed, n.opts.ID)
		}
	}
}

// Put sets key to value and returns the new state with its revision.
func (n *Node) Put(ctx context.Context, key string, value []byte, opts ...WriteOption) (KV, error) {
	r, err := n.apply(ctx, withOptions(&command{op: opPut, key: key, value: value}, opts))
	return r.kv, err
}

// Create sets key only if it does not exist; otherwise [ErrKeyExists].
func (n *Node) Create(ctx context.Context, key string, value []byte, opts ...WriteOption) (KV, error) {
	r, err := n.apply(ctx, withOptions(&command{op: opCreate, key: key, value: value}, opts))
	return r.kv, err
}

func withOptions(c *command, opts []WriteOption) *command {
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// CompareAndSwap sets key to value only if its current value equals old. A
// missing key fails with [ErrKeyNotFound]; a mismatch with a
// [*CompareFailedError] carrying the current state.
func (n *Node) CompareAndSwap(ctx context.Context, key string, old, value []byte, opts ...WriteOption) (KV, error) {
	if old == nil {
		old = []byte{}
	}
	r, err := n.apply(ctx, withOptions(&command{op: opCAS, key: key, old: old, value: value}, opts))
	return r.kv, err
}

// Delete removes key and returns its last state; a missing key fails with
// [ErrKeyNotFound].
func (n *Node) Delete(ctx context.Context, key string) (KV, error) {
	r, err := n.apply(ctx, &command{op: opDelete, key: key})
	return r.kv, err
}

// APIAddr returns the client-facing address a node published with
// [Node.SetAPIAddr], from this node's local state ("" if unknown).
func (n *Node) APIAddr(id string) string {
	if !n.started() {
		return ""
	}
	return n.fsm.apiAddr(id)
}

// SetAPIAddr records, in the replicated state, the client-facing address
// (e.g. the HTTP API) of node id, so followers can forward requests to the
// leader. Call it on the leader.
func (n *Node) SetAPIAddr(ctx context.Context, id, addr string) error {
	if id == "" {
		return fmt.Errorf("%w: empty node id", ErrInvalidArgument)
	}
	_, err := n.apply(ctx, &command{op: opSetAPIAddr, key: id, value: []byte(addr)})
	return err
}

func (n *Node) validateKV(c *command) error {
	switch c.op {
	case opNoop, opCompact, opLeaseGrant, opLeaseKeepAlive, opLeaseRevoke, opLeaseExpire, opLeaseExtend, opClusterID:
		return nil
	}
	if c.key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidArgument)
	}
	if len(c.key) > n.opts.MaxKeySize {
		return fmt.Errorf("%w: key of %d bytes exceeds the %d-byte limit", ErrValueTooLarge, len(c.key), n.opts.MaxKeySize)
	}
	if len(c.value) > n.opts.MaxValueSize || len(c.old) > n.opts.MaxValueSize {
		return fmt.Errorf("%w: value of %d bytes for key %q exceeds the %d-byte limit", ErrValueTooLarge, max(len(c.value), len(c.old)), c.key, n.opts.MaxValueSize)
	}
	return nil
}

// apply validates, replicates and applies one command on the leader.
func (n *Node) apply(ctx context.Context, c *command) (applyResult, error) {
	if err := n.usable(ctx); err != nil {
		return applyResult{}, err
	}
	if err := n.validateKV(c); err != nil {
		return applyResult{}, err
	}
	if c.value == nil {
		c.value = []byte{}
	}
	if err := ctx.Err(); err != nil {
		return applyResult{}, fmt.Errorf("consensus: node %q: %w", n.opts.ID, err)
	}
	if n.raft.State() != raft.Leader {
		n.notLeader.Add(1)
		n.applyErrors.Add(1)
		return applyResult{}, n.notLeaderErr()
	}
	f := n.raft.Apply(c.encode(), n.timeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		n.applyErrors.Add(1)
		if (ctx.Err() != nil || errors.Is(err, ErrClosed)) && !errors.Is(err, ErrIndeterminate) {
			// Handed to Raft already: it may still commit.
			err = fmt.Errorf("%w: %w", ErrIndeterminate, err)
		}
		return applyResult{}, err
	}
	r := f.Response().(applyResult)
	if r.err != nil {
		n.applyErrors.Add(1)
		return r, r.err
	}
	switch c.op {
	case opNoop, opLeaseExpire, opLeaseExtend, opClusterID: // the node's own entries
	default:
		n.applies.Add(1)
	}
	return r, nil
}

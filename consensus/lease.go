package consensus

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// LeaseID names a lease granted by [Node.GrantLease]: the Raft log index
// of the grant, so it is unique for the cluster's life. Zero is no lease.
type LeaseID uint64

// LeaseInfo is a lease's state after a grant or a keep-alive.
type LeaseInfo struct {
	ID LeaseID `json:"id"`
	// TTL is how long the lease lives without a keep-alive.
	TTL time.Duration `json:"ttl"`
	// Expires is when the lease lapses, on the clock of the leader that
	// granted or last extended it.
	Expires time.Time `json:"expires"`
}

// maxLeaseTTL bounds a lease's TTL so that its expiry time cannot overflow.
const maxLeaseTTL = 10 * 365 * 24 * time.Hour

// maxSweep bounds the leases one expiry entry revokes.
const maxSweep = 1000

// WriteOption modifies a write ([Node.Put], [Node.Create],
// [Node.CompareAndSwap]).
type WriteOption func(*command)

// WithLease attaches the written key to lease id: the key is deleted when
// the lease expires or is revoked, as etcd's WithLease. The write fails
// with [ErrLeaseNotFound] if the lease does not exist. A later write
// without the option detaches the key.
func WithLease(id LeaseID) WriteOption {
	return func(c *command) { c.lease = uint64(id) }
}

// GrantLease creates a lease that lives for ttl unless kept alive: the
// lease of etcd, the session of Consul. Keys written [WithLease] are
// deleted, with a delete event for each watcher, when it expires or is
// revoked. ttl must be at least [Options.MinLeaseTTL], so that a lease
// outlives a leader election.
//
// Expiry is decided by the leader, whose sweep ([Options.LeaseSweepInterval])
// writes the expired leases' revocation through the log, so every replica
// agrees on when a key disappeared. A new leader first gives every lease a
// full TTL from the moment it takes office (etcd's rule), so a leader change
// never expires a lease early: clients keeping it alive had no leader to
// talk to during the election. The bound: a lease whose holder stopped
// keeping it alive at time T is deleted by max(T, L) + TTL + one sweep
// interval (plus one commit), L being when the current leader took office
// (plus the commit of its first entry); with no leader change, by T + TTL + one
// sweep interval. Times are on the leaders' clocks, so skew between the
// nodes' clocks adds to the bound.
func (n *Node) GrantLease(ctx context.Context, ttl time.Duration) (LeaseInfo, error) {
	if err := n.usable(ctx); err != nil {
		return LeaseInfo{}, err
	}
	if ttl < n.opts.MinLeaseTTL || ttl > maxLeaseTTL {
		return LeaseInfo{}, fmt.Errorf("%w: lease TTL %v outside [%v, %v]", ErrInvalidArgument, ttl, n.opts.MinLeaseTTL, maxLeaseTTL)
	}
	r, err := n.apply(ctx, &command{op: opLeaseGrant, ttl: int64(ttl), now: n.opts.Now().UnixNano()})
	return r.grant, err
}

// KeepAlive renews lease id for its TTL from now. It fails with
// [ErrLeaseNotFound] when the lease was never granted, was revoked, or has
// expired (even if the leader's sweep has not deleted it yet).
func (n *Node) KeepAlive(ctx context.Context, id LeaseID) (LeaseInfo, error) {
	if err := n.usable(ctx); err != nil {
		return LeaseInfo{}, err
	}
	if err := n.leaseBarrier(ctx); err != nil {
		return LeaseInfo{}, err
	}
	r, err := n.apply(ctx, &command{op: opLeaseKeepAlive, lease: uint64(id), now: n.opts.Now().UnixNano()})
	return r.grant, err
}

// RevokeLease ends lease id at once and deletes its keys, in one revision.
// It fails with [ErrLeaseNotFound] for an unknown lease.
func (n *Node) RevokeLease(ctx context.Context, id LeaseID) error {
	_, err := n.apply(ctx, &command{op: opLeaseRevoke, lease: uint64(id)})
	return err
}

// leaseBarrier commits, once per term, the entry that extends every lease
// by its TTL from now: a new leader's keep-alives and expiry decisions
// follow it.
func (n *Node) leaseBarrier(ctx context.Context) error {
	term := n.raft.CurrentTerm()
	if n.leaseTerm.Load() == term {
		return nil
	}
	n.leaseMu.Lock()
	defer n.leaseMu.Unlock()
	if n.leaseTerm.Load() == term {
		return nil
	}
	if n.raft.State() != raft.Leader {
		n.notLeader.Add(1)
		return n.notLeaderErr()
	}
	if _, err := n.apply(ctx, &command{op: opLeaseExtend, now: n.opts.Now().UnixNano()}); err != nil {
		return err
	}
	n.leaseTerm.Store(term)
	return nil
}

// sweepLeases revokes, through the log, every lease expired by the leader's
// clock. The leader's leadership loop runs it every
// [Options.LeaseSweepInterval]; it does nothing on a follower.
func (n *Node) sweepLeases(ctx context.Context) (int, error) {
	if n.raft.State() != raft.Leader || !n.fsm.hasLeases() {
		return 0, nil
	}
	if err := n.leaseBarrier(ctx); err != nil {
		return 0, err
	}
	now := n.opts.Now().UnixNano()
	total := 0
	for ids := range slices.Chunk(n.fsm.expired(now), maxSweep) {
		if _, err := n.apply(ctx, &command{op: opLeaseExpire, ids: ids, now: now}); err != nil {
			return total, err
		}
		total += len(ids)
	}
	return total, nil
}

func (f *fsm) hasLeases() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.leases) != 0
}

// expired returns the leases expired at now, in id order. It scans every
// lease: O(leases) per sweep.
func (f *fsm) expired(now int64) []LeaseID {
	f.mu.RLock()
	var ids []LeaseID
	for id, l := range f.leases {
		if l.Expires <= now {
			ids = append(ids, id)
		}
	}
	f.mu.RUnlock()
	slices.Sort(ids)
	return ids
}

// applyLease runs a lease command; requires f.mu held.
func (f *fsm) applyLease(index uint64, c *command) applyResult {
	id := LeaseID(c.lease)
	switch c.op {
	case opLeaseGrant:
		id = LeaseID(index)
		l := &leaseState{TTL: c.ttl, Expires: c.now + c.ttl, Keys: map[string]struct{}{}}
		f.leases[id] = l
		return applyResult{grant: l.info(id)}
	case opLeaseKeepAlive:
		l := f.leases[id]
		if l == nil || c.now >= l.Expires {
			return applyResult{err: fmt.Errorf("%w: lease %d (never granted, revoked or expired)", ErrLeaseNotFound, id)}
		}
		l.Expires = c.now + l.TTL
		return applyResult{grant: l.info(id)}
	case opLeaseRevoke:
		if f.leases[id] == nil {
			return applyResult{err: fmt.Errorf("%w: lease %d", ErrLeaseNotFound, id)}
		}
		f.revoke(index, id)
	case opLeaseExpire:
		// The leader listed the leases expired at c.now; one kept alive
		// since then is spared.
		for _, id := range c.ids {
			if l := f.leases[id]; l != nil && l.Expires <= c.now {
				f.revoke(index, id)
			}
		}
	case opLeaseExtend:
		for _, l := range f.leases {
			l.Expires = max(l.Expires, c.now+l.TTL)
		}
	}
	return applyResult{}
}

// revoke deletes lease id and its keys, in key order so that every replica
// records the same events; requires f.mu held.
func (f *fsm) revoke(index uint64, id LeaseID) {
	for _, key := range slices.Sorted(maps.Keys(f.leases[id].Keys)) {
		if f.kv[key] != nil {
			f.del(index, key)
		}
	}
	delete(f.leases, id)
}

// leaseKeyPrefix returns the longest common prefix of the keys attached to
// lease id; false for an unknown lease or one without keys.
func (f *fsm) leaseKeyPrefix(id LeaseID) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	l := f.leases[id]
	if l == nil || len(l.Keys) == 0 {
		return "", false
	}
	first, prefix := true, ""
	for k := range l.Keys {
		if first {
			prefix, first = k, false
			continue
		}
		i := 0
		for i < len(prefix) && i < len(k) && prefix[i] == k[i] {
			i++
		}
		prefix = prefix[:i]
	}
	return prefix, true
}

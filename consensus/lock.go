package consensus

import (
	"context"
	"fmt"
	"time"
)

// Lease is a held distributed lock: the guide's "Zookeeper/etcd: leader
// election, locks" use case, built on the replicated store.
//
// A lock is granted for a TTL measured on the leader's clock and must be
// renewed before it expires; once expired, another owner may take it. A
// process can pause (GC, swap, a partition) past its TTL without noticing,
// so a lock alone cannot protect a shared resource. Token is the fencing
// token: the Raft log index of the grant, which grows with every new grant.
// Writes made with [Node.PutFenced] are rejected unless the token is still
// the current holder's, so a client that lost its lease cannot overwrite a
// newer holder's work; external resources should likewise reject tokens
// lower than the highest they have seen.
type Lease struct {
	Name  string `json:"name"`
	Owner string `json:"owner"`
	Token uint64 `json:"token"`

	expires int64 // unix nanoseconds on the leader's clock
}

// Expires returns when the lease lapses, on the clock of the leader that
// granted or last renewed it.
func (l Lease) Expires() time.Time { return time.Unix(0, l.expires) }

func (n *Node) lockCommand(ctx context.Context, op opCode, name, owner string, token uint64, ttl time.Duration) (*command, error) {
	if err := n.usable(ctx); err != nil {
		return nil, err
	}
	if name == "" || owner == "" {
		return nil, fmt.Errorf("%w: lock name %q and owner %q must not be empty", ErrInvalidArgument, name, owner)
	}
	if (op == opLockAcquire || op == opLockRenew) && ttl <= 0 {
		return nil, fmt.Errorf("%w: lock %q: non-positive TTL %v", ErrInvalidArgument, name, ttl)
	}
	return &command{op: op, key: name, owner: owner, token: token, ttl: int64(ttl), now: n.opts.Now().UnixNano()}, nil
}

// AcquireLock grants lock name to owner for ttl if it is free, expired or
// already owner's (re-acquiring issues a new token). Otherwise it fails
// with [ErrLockHeld]; callers poll or back off.
func (n *Node) AcquireLock(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error) {
	c, err := n.lockCommand(ctx, opLockAcquire, name, owner, 0, ttl)
	if err != nil {
		return Lease{}, err
	}
	r, err := n.apply(ctx, c)
	return r.lease, err
}

// RenewLock extends a held lease by ttl from now. It fails with
// [ErrLeaseLost] if the lease expired or was taken over.
func (n *Node) RenewLock(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	c, err := n.lockCommand(ctx, opLockRenew, l.Name, l.Owner, l.Token, ttl)
	if err != nil {
		return Lease{}, err
	}
	r, err := n.apply(ctx, c)
	return r.lease, err
}

// ReleaseLock frees a held lock. It fails with [ErrLeaseLost] if the token
// is no longer the current one.
func (n *Node) ReleaseLock(ctx context.Context, l Lease) error {
	c, err := n.lockCommand(ctx, opLockRelease, l.Name, l.Owner, l.Token, 0)
	if err != nil {
		return err
	}
	_, err = n.apply(ctx, c)
	return err
}

// PutFenced sets key to value only if l is still the current, unexpired
// holder of its lock, checked atomically in the replicated state machine.
// A stale holder gets [ErrLeaseLost] and the newer holder's data survives.
func (n *Node) PutFenced(ctx context.Context, l Lease, key string, value []byte) (KV, error) {
	c, err := n.lockCommand(ctx, opPutFenced, l.Name, l.Owner, l.Token, 0)
	if err != nil {
		return KV{}, err
	}
	c.lock, c.key, c.value = l.Name, key, value
	r, err := n.apply(ctx, c)
	return r.kv, err
}

// LockHolder returns the current holder of lock name from local state, with
// the given consistency; ok is false if the lock is free or expired on
// this node's clock.
func (n *Node) LockHolder(ctx context.Context, name string, mode ReadMode) (l Lease, ok bool, err error) {
	if err := n.checkRead(ctx, mode); err != nil {
		return Lease{}, false, err
	}
	st, ok := n.fsm.lockInfo(name)
	if !ok || n.opts.Now().UnixNano() >= st.Expires {
		return Lease{}, false, nil
	}
	return st.lease(name), true, nil
}

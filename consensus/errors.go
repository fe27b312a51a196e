package consensus

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the package returns wraps one of these, so
// callers branch with [errors.Is].
var (
	// ErrInvalidConfig reports bad [Options] or [ClusterOptions].
	ErrInvalidConfig = errors.New("consensus: invalid configuration")
	// ErrInvalidArgument reports a bad argument to a method: an empty key,
	// a non-positive lease TTL, joining a node to itself.
	ErrInvalidArgument = errors.New("consensus: invalid argument")
	// ErrNotLeader reports a write or linearizable read sent to a node that
	// is not the leader. The concrete error is a [*NotLeaderError] naming
	// the leader when one is known.
	ErrNotLeader = errors.New("consensus: not the leader")
	// ErrKeyNotFound reports a read, delete or compare-and-swap on a key
	// that does not exist.
	ErrKeyNotFound = errors.New("consensus: key not found")
	// ErrKeyExists reports a Create on a key that already exists.
	ErrKeyExists = errors.New("consensus: key already exists")
	// ErrCompareFailed reports a compare-and-swap whose expected value did
	// not match the current one.
	ErrCompareFailed = errors.New("consensus: compare failed")
	// ErrValueTooLarge reports a key or value over the configured limit.
	ErrValueTooLarge = errors.New("consensus: value too large")
	// ErrUnknownNode reports a membership change naming a server that is
	// not in the configuration.
	ErrUnknownNode = errors.New("consensus: unknown node")
	// ErrDuplicateServer reports a server whose address (or id) is already
	// used by another member.
	ErrDuplicateServer = errors.New("consensus: duplicate server")
	// ErrLockHeld reports a lock acquisition while another owner holds an
	// unexpired lease.
	ErrLockHeld = errors.New("consensus: lock held by another owner")
	// ErrLeaseLost reports an operation with a lease that expired or was
	// taken over: the fencing token is no longer the current one.
	ErrLeaseLost = errors.New("consensus: lease lost")
	// ErrLeaseNotFound reports a keep-alive, revocation or write with a
	// lease ([Node.GrantLease]) that was never granted, was revoked or has
	// expired.
	ErrLeaseNotFound = errors.New("consensus: lease not found")
	// ErrCompacted reports a watch from a revision older than the history
	// a node keeps: re-list with [Node.Range] and watch from its revision.
	ErrCompacted = errors.New("consensus: revision compacted")
	// ErrFutureRevision reports a watch or compaction from a revision
	// beyond the log the node knows to be committed.
	ErrFutureRevision = errors.New("consensus: future revision")
	// ErrIndeterminate reports a write whose outcome is unknown: it was
	// handed to Raft but leadership was lost (or the node shut down) before
	// it was known to be committed. It may or may not have been applied;
	// a retry must be safe to repeat (use CompareAndSwap or fencing).
	ErrIndeterminate = errors.New("consensus: outcome unknown")
	// ErrUnauthenticated reports an HTTP request whose caller could not be
	// authenticated ([Auth]): no, malformed, unknown or expired
	// credentials. Over HTTP: 401 with a WWW-Authenticate challenge.
	ErrUnauthenticated = errors.New("consensus: unauthenticated")
	// ErrForbidden reports an authenticated caller whose [Role] does not
	// allow the request. Over HTTP: 403.
	ErrForbidden = errors.New("consensus: forbidden")
	// ErrInvalidBackup reports a backup [Node.Restore] refuses: truncated,
	// corrupted, of an unknown format, or of another cluster.
	ErrInvalidBackup = errors.New("consensus: invalid backup")
	// ErrClosed reports use of a closed [Node] or [LocalCluster], or of a
	// zero one (not made by [NewNode] or [NewLocalCluster]).
	ErrClosed = errors.New("consensus: closed")
)

// NotLeaderError is the concrete error for [ErrNotLeader]. It names the
// leader this node knows of, so a client can redirect.
type NotLeaderError struct {
	// LeaderID and LeaderAddr are empty when no leader is known (an
	// election is in progress, or this node is cut off).
	LeaderID, LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "consensus: not the leader (no leader known)"
	}
	return fmt.Sprintf("consensus: not the leader (leader is %q at %s)", e.LeaderID, e.LeaderAddr)
}

// Unwrap returns [ErrNotLeader].
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// CompareFailedError is the concrete error for [ErrCompareFailed]; it carries
// the key's current state so the caller can retry without another read.
type CompareFailedError struct {
	Current KV
}

func (e *CompareFailedError) Error() string {
	return fmt.Sprintf("consensus: compare failed on key %q (current revision %d)", e.Current.Key, e.Current.Revision)
}

// Unwrap returns [ErrCompareFailed].
func (e *CompareFailedError) Unwrap() error { return ErrCompareFailed }

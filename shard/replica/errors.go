package replica

import (
	"errors"
	"fmt"
)

// Errors returned by this package, testable with [errors.Is]. Every error
// caused by bad input wraps [ErrInvalidArgument] as well as its own
// sentinel, so a caller may branch on either.
var (
	// ErrInvalidArgument is wrapped by every error caused by bad input: a
	// bad configuration, N, R, W or level, an empty key, an oversized
	// value, a causal context of another key, a bad session token.
	ErrInvalidArgument = errors.New("replica: invalid argument")
	// ErrInvalidLevel reports N < 1, R or W outside [1, N], N beyond the
	// number of nodes, or an unknown consistency level.
	ErrInvalidLevel = fmt.Errorf("%w: invalid consistency level", ErrInvalidArgument)
	// ErrValueTooLarge reports a value larger than Config.MaxValueSize.
	ErrValueTooLarge = fmt.Errorf("%w: value too large", ErrInvalidArgument)
	// ErrInvalidContext reports a causal context that was read from
	// another key, or that does not decode.
	ErrInvalidContext = fmt.Errorf("%w: invalid causal context", ErrInvalidArgument)
	// ErrSessionToken reports a session token that does not decode, is not
	// signed with this cluster's session key (forged or corrupted), or is
	// older than Config.SessionTTL (stale).
	ErrSessionToken = fmt.Errorf("%w: invalid session token", ErrInvalidArgument)
	// ErrBadBackup reports a backup that [RestoreBolt] refuses: truncated,
	// corrupted, not a backup, or a database bbolt finds inconsistent.
	ErrBadBackup = fmt.Errorf("%w: bad backup", ErrInvalidArgument)

	// ErrNotFound reports a key that none of the replicas read holds.
	ErrNotFound = errors.New("replica: key not found")
	// ErrUnavailable reports a request that could not reach the R or W
	// replicas its level asks for before its deadline; the error says how
	// many answered. A write that fails so may still be stored on the
	// replicas that did answer (like a timed-out write in Cassandra or
	// Dynamo): it is not rolled back.
	ErrUnavailable = errors.New("replica: not enough replicas answered")
	// ErrSessionUnavailable reports a read that found no replica as recent
	// as what its session has already written or read: the session
	// guarantees forbid answering with older data.
	ErrSessionUnavailable = errors.New("replica: no replica is as recent as the session")
	// ErrNodeDown reports a call to a node that is crashed or not
	// registered on the network.
	ErrNodeDown = errors.New("replica: node down")
	// ErrBadReply reports a reply that breaks the protocol (another key, a
	// malformed version, an oversized value): the node that sent it is
	// treated as failed.
	ErrBadReply = errors.New("replica: bad reply")
	// ErrClosed reports a call on a closed [Coordinator].
	ErrClosed = errors.New("replica: closed")
)

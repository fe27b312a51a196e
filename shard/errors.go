package shard

import (
	"errors"
	"fmt"
)

// Errors returned by this package, testable with [errors.Is]. The
// configuration errors all wrap [ErrInvalidConfig] as well as their own
// sentinel, so a caller may branch on either.
var (
	// ErrInvalidConfig is wrapped by every error caused by bad input to a
	// constructor: a bad option, shard set, range table or directory.
	ErrInvalidConfig = errors.New("shard: invalid configuration")
	// ErrNoShards reports an empty shard set.
	ErrNoShards = fmt.Errorf("%w: no shards", ErrInvalidConfig)
	// ErrDuplicateShard reports two shards with one name.
	ErrDuplicateShard = fmt.Errorf("%w: duplicate shard name", ErrInvalidConfig)
	// ErrInvalidWeight reports a weight that is not a finite number
	// greater than zero, or a weight a placement cannot honour (modulo,
	// jump and range placement are unweighted and take only 1).
	ErrInvalidWeight = fmt.Errorf("%w: invalid weight", ErrInvalidConfig)
	// ErrInvalidRange reports unsorted, overlapping or empty ranges.
	ErrInvalidRange = fmt.Errorf("%w: invalid range", ErrInvalidConfig)
	// ErrUnknownShard reports a reference (a directory entry, a store, a
	// split) to a shard that is not in the shard set.
	ErrUnknownShard = fmt.Errorf("%w: unknown shard", ErrInvalidConfig)

	// ErrNoShardForKey reports a key that no shard owns: outside every range
	// of a [Range], or absent from a [Directory] without a fallback.
	ErrNoShardForKey = errors.New("shard: no shard owns the key")
	// ErrNotFound reports a key that a [Store] does not hold.
	ErrNotFound = errors.New("shard: key not found")
	// ErrPartialResult is wrapped by [*PartialError]: a cross-shard query
	// where some shards failed, so its result is incomplete.
	ErrPartialResult = errors.New("shard: partial result")
	// ErrStoreScan reports a [Store] whose Scan broke its contract by
	// returning keys before the start it was given: paging through such a
	// store would never end, so the router and the migration stop with
	// this error instead.
	ErrStoreScan = errors.New("shard: store scan went backwards")
	// ErrMigrationState reports a migration step called out of order, such
	// as [Migration.Switch] before a successful [Migration.Verify].
	ErrMigrationState = errors.New("shard: migration step out of order")
)

// errNotMade is the error of a call on a value its constructor did not
// make (the zero value or a nil pointer), which has nothing to work on.
func errNotMade(what, constructor string) error {
	return fmt.Errorf("%w: %s not made by %s", ErrInvalidConfig, what, constructor)
}

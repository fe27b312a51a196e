package cache

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors returned by this package, testable with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every constructor error caused by a bad
	// option or argument.
	ErrInvalidConfig = errors.New("cache: invalid configuration")
	// ErrNotFound is returned by a [Loader] when the source of truth has no
	// value for a key, and by caches when neither the cache nor the source
	// has one. Cache-aside remembers it for [AsideOptions.NegativeTTL].
	ErrNotFound = errors.New("cache: not found")
	// ErrTooLarge is returned when a value's weight exceeds what the store
	// can ever hold.
	ErrTooLarge = errors.New("cache: value too large")
	// ErrQueueFull is returned by [WriteBehind.Set] when the queue is full
	// and the full-queue policy is [FullError].
	ErrQueueFull = errors.New("cache: write-behind queue full")
	// ErrClosed is returned by operations on a closed component.
	ErrClosed = errors.New("cache: closed")
	// ErrUnflushed is wrapped by the [*UnflushedError] that
	// [WriteBehind.Close] returns when acknowledged writes are not in the
	// source.
	ErrUnflushed = errors.New("cache: writes not in the source")
)

// errZero is what a method of a zero value (one not made by its
// constructor) returns, naming the constructor.
func errZero(typ, ctor string) error {
	return fmt.Errorf("%w: zero %s; create it with %s", ErrInvalidConfig, typ, ctor)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// Reason says why an entry left a [Memory] store.
type Reason uint8

// Reasons an entry leaves a store.
const (
	Evicted  Reason = iota // removed by the eviction policy to make room
	Expired                // its TTL passed
	Deleted                // removed by Delete or an invalidation
	Replaced               // overwritten by Set
)

// String returns "evicted", "expired", "deleted" or "replaced".
func (r Reason) String() string {
	switch r {
	case Evicted:
		return "evicted"
	case Expired:
		return "expired"
	case Deleted:
		return "deleted"
	case Replaced:
		return "replaced"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Store is what the patterns ([Aside], [WriteThrough], [WriteBehind],
// [RefreshAhead]) cache into: a [Memory] store through [Memory.AsStore],
// or the Redis store and the multi-level cache of package rediscache,
// which implement it directly. Implementations must be safe for
// concurrent use.
type Store[K comparable, V any] interface {
	// Get returns the value of key and its remaining TTL (0 for no
	// expiry); ok is false when the key is absent or expired.
	Get(ctx context.Context, key K) (value V, ttl time.Duration, ok bool, err error)
	// Set stores value under key for ttl (0 = the store's default).
	Set(ctx context.Context, key K, value V, ttl time.Duration) error
	// Delete deletes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key K) error
}

// Loader reads the source of truth. Load returns an error wrapping
// [ErrNotFound] when the key does not exist there.
type Loader[K comparable, V any] interface {
	Load(ctx context.Context, key K) (V, error)
}

// LoaderFunc adapts a function to [Loader].
type LoaderFunc[K comparable, V any] func(ctx context.Context, key K) (V, error)

// Load calls f(ctx, key); a nil f returns an error wrapping
// [ErrInvalidConfig].
func (f LoaderFunc[K, V]) Load(ctx context.Context, key K) (V, error) {
	if f == nil {
		var zero V
		return zero, invalid("nil LoaderFunc for key %v", key)
	}
	return f(ctx, key)
}

// Writer writes to the source of truth, one key at a time.
type Writer[K comparable, V any] interface {
	Write(ctx context.Context, key K, value V) error
	Delete(ctx context.Context, key K) error
}

// Write is one pending change for the source of truth: a value to store, or
// a deletion when Delete is true.
type Write[K comparable, V any] struct {
	Key    K
	Value  V
	Delete bool
}

// BatchWriter writes a batch of changes to the source of truth. It should
// apply the batch atomically or idempotently: on error the whole batch is
// retried.
type BatchWriter[K comparable, V any] interface {
	WriteBatch(ctx context.Context, batch []Write[K, V]) error
}

// BatchWriterFunc adapts a function to [BatchWriter].
type BatchWriterFunc[K comparable, V any] func(ctx context.Context, batch []Write[K, V]) error

// WriteBatch calls f(ctx, batch); a nil f returns an error wrapping
// [ErrInvalidConfig].
func (f BatchWriterFunc[K, V]) WriteBatch(ctx context.Context, batch []Write[K, V]) error {
	if f == nil {
		return invalid("nil BatchWriterFunc for a batch of %d", len(batch))
	}
	return f(ctx, batch)
}

// hitRatio returns hits/(hits+misses), or 0 with no lookups.
func hitRatio(hits, misses uint64) float64 {
	if hits+misses == 0 {
		return 0
	}
	return float64(hits) / float64(hits+misses)
}

func nowFunc(f func() time.Time) func() time.Time {
	if f == nil {
		return time.Now
	}
	return f
}

func wrapf(sentinel error, format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), err: sentinel}
}

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

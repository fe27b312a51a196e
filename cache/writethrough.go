package cache

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Write-through — the cache is updated with the database.
//
// The guide: "Write-Through: Cache updated with database. Flow: Write to
// cache and DB simultaneously. Pros: Cache consistency, simple
// invalidation. Cons: Higher write latency, cache pollution. Use Cases:
// Critical data consistency."
//
// [WriteThrough] writes the source first and the cache second, so a write
// is acknowledged only once the source has it, and the cache never holds a
// value the source refused: on a source error the key is dropped from the
// cache (the source may or may not have applied a write that timed out, so
// the old cached value is no longer trustworthy either). Read with a
// [ReadThrough] or [Aside] over the same store.

// WriteThrough writes to a source of truth and then to a cache. It is safe
// for concurrent use. Create it with [NewWriteThrough]. A zero
// WriteThrough is not usable: its methods return an error wrapping
// [ErrInvalidConfig] at once.
type WriteThrough[K comparable, V any] struct {
	store  Store[K, V]
	source Writer[K, V]
	ttl    time.Duration
	stats  struct{ writes, sourceErrors, storeErrors atomic.Uint64 }
}

// WriteThroughStats is a snapshot of a [WriteThrough]'s counters.
type WriteThroughStats struct {
	Writes       uint64 // Set and Delete calls
	SourceErrors uint64 // writes the source refused
	StoreErrors  uint64 // cache updates that failed after the source write
}

// NewWriteThrough returns a write-through writer over store and source;
// values are cached for ttl (0: the store's default).
func NewWriteThrough[K comparable, V any](store Store[K, V], source Writer[K, V], ttl time.Duration) (*WriteThrough[K, V], error) {
	switch {
	case store == nil:
		return nil, invalid("nil store")
	case source == nil:
		return nil, invalid("nil source writer")
	case ttl < 0:
		return nil, invalid("negative TTL %v", ttl)
	}
	return &WriteThrough[K, V]{store: store, source: source, ttl: ttl}, nil
}

// Set writes value to the source and then to the cache. It returns the
// source's error (the key is then removed from the cache) or the cache's
// error (the source has the value; the stale cache entry was removed if
// possible).
func (w *WriteThrough[K, V]) Set(ctx context.Context, key K, value V) error {
	if w.store == nil {
		return errZero("WriteThrough", "NewWriteThrough")
	}
	w.stats.writes.Add(1)
	if err := w.source.Write(ctx, key, value); err != nil {
		w.stats.sourceErrors.Add(1)
		return errors.Join(fmt.Errorf("cache: write-through of key %v: %w", key, err), w.drop(ctx, key))
	}
	if err := w.store.Set(ctx, key, value, w.ttl); err != nil {
		w.stats.storeErrors.Add(1)
		return errors.Join(fmt.Errorf("cache: source has key %v but the cache update failed: %w", key, err), w.drop(ctx, key))
	}
	return nil
}

// Delete deletes key from the source and then from the cache.
func (w *WriteThrough[K, V]) Delete(ctx context.Context, key K) error {
	if w.store == nil {
		return errZero("WriteThrough", "NewWriteThrough")
	}
	w.stats.writes.Add(1)
	if err := w.source.Delete(ctx, key); err != nil {
		w.stats.sourceErrors.Add(1)
		return errors.Join(fmt.Errorf("cache: write-through delete of key %v: %w", key, err), w.drop(ctx, key))
	}
	return w.drop(ctx, key)
}

func (w *WriteThrough[K, V]) drop(ctx context.Context, key K) error {
	if err := w.store.Delete(ctx, key); err != nil {
		w.stats.storeErrors.Add(1)
		return fmt.Errorf("cache: removing key %v from the cache: %w", key, err)
	}
	return nil
}

// Stats returns the writer's counters.
func (w *WriteThrough[K, V]) Stats() WriteThroughStats {
	return WriteThroughStats{Writes: w.stats.writes.Load(), SourceErrors: w.stats.sourceErrors.Load(), StoreErrors: w.stats.storeErrors.Load()}
}

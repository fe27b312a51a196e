package cache

import (
	"context"
	"sync"
	"sync/atomic"
)

// flight de-duplicates concurrent loads of one key: the first caller runs
// the load and later callers wait for its result, so a miss on a hot key
// costs the source one call however many requests arrive together. It is
// x/sync/singleflight made generic, with waiters that honour their own
// context. The zero value is ready to use.
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*call[V] // guarded by mu
	// ended counts the calls that have ended, each counted under mu as
	// it leaves calls: a caller that finds no call for its key after
	// reading ended sees the count moved if one ended in between.
	ended atomic.Uint64
}

type call[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// do runs fn for key unless a call for key is in flight, in which case it
// waits for that call. shared reports whether the result came from another
// caller's load. The caller that runs fn waits for it whatever its context
// does; fn gets that caller's context.
func (f *flight[K, V]) do(ctx context.Context, key K, fn func() (V, error)) (v V, shared bool, err error) {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.val, true, c.err
		case <-ctx.Done():
			var zero V
			return zero, true, context.Cause(ctx)
		}
	}
	if f.calls == nil {
		f.calls = make(map[K]*call[V])
	}
	c := &call[V]{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	defer func() {
		f.mu.Lock()
		delete(f.calls, key)
		f.ended.Add(1)
		f.mu.Unlock()
		close(c.done)
	}()
	c.val, c.err = fn()
	return c.val, false, c.err
}

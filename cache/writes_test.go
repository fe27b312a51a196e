package cache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteThrough(t *testing.T) {
	db := newFakeDB()
	m := newMem(t, 10)
	w, err := NewWriteThrough[string, int](m.AsStore(), db, time.Minute)
	require.NoError(t, err)
	require.NoError(t, w.Set(t.Context(), "a", 1))
	v, _ := db.get("a")
	assert.Equal(t, 1, v)
	v, ok := m.Get("a")
	assert.True(t, ok)
	assert.Equal(t, 1, v)

	// A source error leaves no value in the cache the source does not have.
	db.setFail(errSource)
	err = w.Set(t.Context(), "a", 2)
	require.ErrorIs(t, err, errSource)
	_, ok = m.Get("a")
	assert.False(t, ok, "cache dropped the key rather than keep a value the source refused")
	v, _ = db.get("a")
	assert.Equal(t, 1, v)
	err = w.Set(t.Context(), "b", 5)
	require.ErrorIs(t, err, errSource)
	_, ok = m.Get("b")
	assert.False(t, ok)
	db.setFail(nil)

	require.NoError(t, w.Delete(t.Context(), "a"))
	_, ok = db.get("a")
	assert.False(t, ok)
	assert.Equal(t, WriteThroughStats{Writes: 4, SourceErrors: 2}, w.Stats())
}

// failingStore accepts lookups but fails Set, to test cache-error paths.
type failingStore struct{ Store[string, int] }

func (failingStore) Set(context.Context, string, int, time.Duration) error { return errSource }

func TestWriteThroughCacheErrorReported(t *testing.T) {
	db := newFakeDB()
	m := newMem(t, 10)
	require.NoError(t, m.Set("a", 0))
	w, err := NewWriteThrough[string, int](failingStore{m.AsStore()}, db, 0)
	require.NoError(t, err)
	err = w.Set(t.Context(), "a", 1)
	require.ErrorIs(t, err, errSource)
	assert.Contains(t, err.Error(), "source has key a")
	_, ok := m.Get("a")
	assert.False(t, ok, "stale entry removed")
	v, _ := db.get("a")
	assert.Equal(t, 1, v)
}

// Writes are acknowledged after the cache, coalesced per key, flushed in
// batches by size and by interval.
func TestWriteBehindBatchesAndCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		m := newMem(t, 1000)
		w, err := NewWriteBehind[string, int](m.AsStore(), db, WriteBehindOptions{BatchSize: 10, Interval: time.Second})
		require.NoError(t, err)
		defer w.Close(t.Context())
		for i := range 5 {
			require.NoError(t, w.Set(t.Context(), "k", i)) // coalesces to one write
		}
		v, ok := m.Get("k")
		assert.True(t, ok)
		assert.Equal(t, 4, v, "cache has the write at once")
		synctest.Wait()
		_, writes, _ := db.counts()
		assert.Equal(t, 0, writes, "nothing flushed before the interval")
		time.Sleep(time.Second)
		synctest.Wait()
		_, writes, batches := db.counts()
		assert.Equal(t, 1, writes, "five writes to one key coalesced")
		assert.Equal(t, 1, batches)
		got, _ := db.get("k")
		assert.Equal(t, 4, got, "the last value wins")

		// A full batch flushes at once, without waiting for the interval.
		for i := range 10 {
			require.NoError(t, w.Set(t.Context(), fmt.Sprint("b", i), i))
		}
		synctest.Wait()
		_, writes, _ = db.counts()
		assert.Equal(t, 11, writes)

		require.NoError(t, w.Delete(t.Context(), "k"))
		_, ok = m.Get("k")
		assert.False(t, ok)
		require.NoError(t, w.Flush(t.Context()))
		_, ok = db.get("k")
		assert.False(t, ok)
		st := w.Stats()
		assert.Equal(t, uint64(16), st.Accepted)
		assert.Equal(t, uint64(4), st.Coalesced)
		assert.Equal(t, uint64(12), st.Written)
		assert.Equal(t, 0, st.Queued)
	})
}

// A failing source is retried with backoff; nothing is lost, the failures
// are reported, and Close drains everything once the source recovers.
func TestWriteBehindRetriesAndCloseDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.setFail(errSource)
		var mu sync.Mutex
		var reported []error
		w, err := NewWriteBehind[string, int](newMem(t, 1000).AsStore(), db, WriteBehindOptions{
			BatchSize: 3, Interval: 100 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
			OnFlush: func(_ int, err error) {
				mu.Lock()
				reported = append(reported, err)
				mu.Unlock()
			},
		})
		require.NoError(t, err)
		for i := range 7 {
			require.NoError(t, w.Set(t.Context(), fmt.Sprint("k", i), i))
		}
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		assert.Positive(t, w.Stats().Failures)
		assert.Equal(t, 7, w.Stats().Queued, "failed writes stay queued")
		mu.Lock()
		require.NotEmpty(t, reported)
		assert.ErrorIs(t, reported[0], errSource)
		mu.Unlock()
		db.setFail(nil)
		require.NoError(t, w.Close(t.Context()))
		for i := range 7 {
			v, ok := db.get(fmt.Sprint("k", i))
			assert.True(t, ok, "k%d written", i)
			assert.Equal(t, i, v)
		}
		assert.Empty(t, w.Unflushed())
		err = w.Set(t.Context(), "late", 1)
		require.ErrorIs(t, err, ErrClosed)
	})
}

// When Close runs out of time, it says how many writes did not reach the
// source and hands them back: acknowledged writes are never silently lost.
func TestWriteBehindCloseTimeoutReturnsUnflushed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.setFail(errSource)
		w, err := NewWriteBehind[string, int](newMem(t, 100).AsStore(), db, WriteBehindOptions{BatchSize: 2})
		require.NoError(t, err)
		for i := range 5 {
			require.NoError(t, w.Set(t.Context(), fmt.Sprint("k", i), i))
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err = w.Close(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, errSource, "the source's error is reported")
		assert.Contains(t, err.Error(), "5 writes not in the source")
		left := w.Unflushed()
		require.Len(t, left, 5)
		for i, wr := range left {
			assert.Equal(t, fmt.Sprint("k", i), wr.Key, "oldest first")
			assert.Equal(t, i, wr.Value)
		}
	})
}

func TestWriteBehindFullQueuePolicies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.setFail(errSource)
		m := newMem(t, 100)
		w, err := NewWriteBehind[string, int](m.AsStore(), db, WriteBehindOptions{QueueSize: 2, Full: FullError, Interval: time.Hour})
		require.NoError(t, err)
		require.NoError(t, w.Set(t.Context(), "a", 1))
		require.NoError(t, w.Set(t.Context(), "b", 1))
		require.NoError(t, w.Set(t.Context(), "a", 2), "a queued key coalesces even when full")
		err = w.Set(t.Context(), "c", 1)
		require.ErrorIs(t, err, ErrQueueFull)
		assert.Contains(t, err.Error(), "key c")
		_, ok := m.Get("c")
		assert.False(t, ok, "a refused write is not in the cache")
		db.setFail(nil)
		require.NoError(t, w.Close(t.Context()))

		db2 := newFakeDB()
		db2.setFail(errSource)
		wb, err := NewWriteBehind[string, int](m.AsStore(), db2, WriteBehindOptions{QueueSize: 1, Interval: 10 * time.Millisecond, MinBackoff: 10 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, wb.Set(t.Context(), "x", 1))
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		err = wb.Set(ctx, "y", 1)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, "FullBlock waits until the context ends")
		done := make(chan error)
		go func() { done <- wb.Set(t.Context(), "y", 2) }()
		synctest.Wait()
		db2.setFail(nil) // the queue drains and the blocked writer proceeds
		require.NoError(t, <-done)
		require.NoError(t, wb.Close(t.Context()))
		v, _ := db2.get("y")
		assert.Equal(t, 2, v)
	})
}

// Concurrent writers: the source ends with the value the cache has.
func TestWriteBehindConcurrentOrder(t *testing.T) {
	db := newFakeDB()
	m := newMem(t, 100)
	w, err := NewWriteBehind[string, int](m.AsStore(), db, WriteBehindOptions{BatchSize: 4, Interval: time.Millisecond})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				_ = w.Set(t.Context(), fmt.Sprint("k", i%8), g*1000+i)
			}
		})
	}
	wg.Wait()
	require.NoError(t, w.Close(t.Context()))
	for i := range 8 {
		k := fmt.Sprint("k", i)
		cv, _ := m.Get(k)
		sv, _ := db.get(k)
		assert.Equal(t, cv, sv, "key %s", k)
	}
}

func TestRefreshAheadNeverMissesHotKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.set("hot", 1)
		db.delay = 100 * time.Millisecond
		m := newMem(t, 10)
		r, err := NewRefreshAhead[string, int](m.AsStore(), db, RefreshAheadOptions{TTL: 10 * time.Second, RefreshAfter: 0.5})
		require.NoError(t, err)
		defer func() { require.NoError(t, r.Close(t.Context())) }()
		v, err := r.Get(t.Context(), "hot")
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		db.set("hot", 2)
		// Read every 100 ms for a minute: six TTLs.
		for range 600 {
			time.Sleep(100 * time.Millisecond)
			_, err := r.Get(t.Context(), "hot")
			require.NoError(t, err)
		}
		st := r.Stats()
		assert.Equal(t, uint64(1), st.Misses, "only the first read missed")
		assert.Positive(t, st.Refreshes)
		v, _ = r.Get(t.Context(), "hot")
		assert.Equal(t, 2, v, "refreshed value served")
		loads, _, _ := db.counts()
		assert.LessOrEqual(t, loads, 14, "about one reload per half TTL, not one per read")
	})
}

// While a reload runs, readers get the current value and no second reload
// starts.
func TestRefreshAheadOneReloadPerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.set("k", 1)
		m := newMem(t, 10)
		r, err := NewRefreshAhead[string, int](m.AsStore(), db, RefreshAheadOptions{TTL: 10 * time.Second})
		require.NoError(t, err)
		defer func() { require.NoError(t, r.Close(t.Context())) }()
		_, err = r.Get(t.Context(), "k")
		require.NoError(t, err)
		db.delay = time.Second
		time.Sleep(9 * time.Second)
		for range 50 {
			v, err := r.Get(t.Context(), "k")
			require.NoError(t, err)
			assert.Equal(t, 1, v)
		}
		assert.Equal(t, uint64(1), r.Stats().Refreshes)
		time.Sleep(time.Second)
		synctest.Wait()
		_, ttl, ok, _ := m.AsStore().Get(t.Context(), "k")
		assert.True(t, ok)
		assert.Greater(t, ttl, 9*time.Second, "reloaded with a fresh TTL")
	})
}

// XFetch refreshes probabilistically: never when expiry is far compared to
// δ·β, always when it is next to it.
func TestRefreshAheadXFetch(t *testing.T) {
	r, err := NewRefreshAhead[string, int](newMem(t, 10).AsStore(), newFakeDB(), RefreshAheadOptions{
		TTL: time.Minute, Beta: 1, Rand: func() float64 { return 0.5 },
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close(t.Context())) }()
	r.delta.Store(int64(time.Second))
	// −δ·β·ln(0.5) = 0.69 s
	assert.False(t, r.due(time.Second))
	assert.True(t, r.due(600*time.Millisecond))
	r.opts.Beta = 3 // 2.08 s
	assert.True(t, r.due(2*time.Second))
}

// Without XFetch a value is due for reload once RefreshAfter of its TTL
// (default 0.8) has passed, and never when its TTL is unknown.
func TestRefreshAheadDueAfterShare(t *testing.T) {
	for _, tc := range []struct {
		after float64
		due   time.Duration // RefreshAfter of the TTL left
	}{{0, 2 * time.Second}, {0.5, 5 * time.Second}} {
		r, err := NewRefreshAhead[string, int](newMem(t, 10).AsStore(), newFakeDB(), RefreshAheadOptions{TTL: 10 * time.Second, RefreshAfter: tc.after})
		require.NoError(t, err)
		assert.True(t, r.due(tc.due-time.Millisecond), "RefreshAfter %v", tc.after)
		assert.True(t, r.due(time.Millisecond))
		assert.False(t, r.due(tc.due+time.Millisecond), "RefreshAfter %v", tc.after)
		assert.False(t, r.due(0), "no expiry known")
		require.NoError(t, r.Close(t.Context()))
	}
}

// The load time XFetch scales by is the first load's, then a moving
// average giving each new load an eighth; a failed save of a loaded value
// and a failed background reload are counted and reported, a successful
// one is not.
func TestRefreshAheadLoadTimeAndErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.set("a", 1)
		db.set("b", 2)
		var mu sync.Mutex
		var reported []string
		onError := func(key any, err error) {
			mu.Lock()
			reported = append(reported, fmt.Sprint(key, ": ", err))
			mu.Unlock()
		}
		m := newMem(t, 10)
		r, err := NewRefreshAhead[string, int](m.AsStore(), db, RefreshAheadOptions{TTL: 10 * time.Second, OnError: onError})
		require.NoError(t, err)
		db.delay = 100 * time.Millisecond
		_, err = r.Get(t.Context(), "a")
		require.NoError(t, err)
		assert.Equal(t, int64(100*time.Millisecond), r.delta.Load())
		db.delay = 900 * time.Millisecond
		_, err = r.Get(t.Context(), "b")
		require.NoError(t, err)
		assert.Equal(t, int64(200*time.Millisecond), r.delta.Load(), "(7·100 + 900) / 8 ms")

		// A background reload that succeeds reports nothing; one that
		// fails is counted and reported, and the old value stays.
		db.delay = 0
		time.Sleep(9 * time.Second) // past RefreshAfter
		_, err = r.Get(t.Context(), "a")
		require.NoError(t, err)
		synctest.Wait()
		assert.Equal(t, uint64(1), r.Stats().Refreshes)
		assert.Empty(t, reported)
		time.Sleep(9 * time.Second)
		db.setFail(errSource)
		v, err := r.Get(t.Context(), "a")
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		synctest.Wait()
		assert.Equal(t, []string{"a: " + errSource.Error()}, reported)
		assert.Equal(t, uint64(2), r.Stats().Refreshes)
		assert.Equal(t, uint64(1), r.Stats().LoadErrors)
		require.NoError(t, r.Close(t.Context()))

		// A value loaded but not saved is still returned.
		db.setFail(nil)
		reported = nil
		w, err := NewRefreshAhead[string, int](failingStore{newMem(t, 10).AsStore()}, db, RefreshAheadOptions{TTL: 10 * time.Second, OnError: onError})
		require.NoError(t, err)
		v, err = w.Get(t.Context(), "b")
		require.NoError(t, err)
		assert.Equal(t, 2, v)
		assert.Equal(t, []string{"b: " + errSource.Error()}, reported)
		assert.Equal(t, uint64(1), w.Stats().LoadErrors)
		require.NoError(t, w.Close(t.Context()))
	})
}

// Goroutines end at Close: goleak in TestMain checks every test.
func TestRefreshAheadCloseCancelsReloads(t *testing.T) {
	db := newFakeDB()
	db.set("k", 1)
	m := newMem(t, 10)
	r, err := NewRefreshAhead[string, int](m.AsStore(), db, RefreshAheadOptions{TTL: time.Hour, Beta: 1, Rand: func() float64 { return 0.999999 }})
	require.NoError(t, err)
	_, err = r.Get(t.Context(), "k")
	require.NoError(t, err)
	db.delay = time.Hour
	r.delta.Store(int64(100 * time.Hour))
	_, err = r.Get(t.Context(), "k")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), r.Stats().Refreshes)
	require.NoError(t, r.Close(t.Context())) // returns although the reload would take an hour
}

// A reload whose loader ignores its context holds Close until Close's
// context ends: Close then says so, wrapping the context's error, and a
// second Close waits for the same reload, which ends it.
func TestRefreshAheadCloseBoundedByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var calls atomic.Int32
		loader := LoaderFunc[string, int](func(context.Context, string) (int, error) {
			if calls.Add(1) > 1 {
				<-release // ignores its context
			}
			return 1, nil
		})
		r, err := NewRefreshAhead[string, int](newMem(t, 10).AsStore(), loader, RefreshAheadOptions{TTL: 10 * time.Second})
		require.NoError(t, err)
		_, err = r.Get(t.Context(), "k")
		require.NoError(t, err)
		time.Sleep(9 * time.Second)
		_, err = r.Get(t.Context(), "k") // starts the reload
		require.NoError(t, err)
		synctest.Wait()

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err = r.Close(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "1 reloads still running")

		close(release)
		require.NoError(t, r.Close(t.Context()))
		assert.Equal(t, uint64(1), r.Stats().Refreshes)
	})
}

// batchSource is a BatchWriter that records the keys it applied. Each
// batch takes delay (or fails with fail after it); with hang, a batch
// never returns until its context ends. Every batch honours its context.
type batchSource struct {
	delay time.Duration
	fail  error
	hang  bool

	mu        sync.Mutex
	applied   []string
	cancelled int // batches whose context ended before they finished
}

func (s *batchSource) WriteBatch(ctx context.Context, batch []Write[string, int]) error {
	var wait <-chan time.Time
	if !s.hang {
		wait = time.After(s.delay)
	}
	select {
	case <-wait:
	case <-ctx.Done():
		s.mu.Lock()
		s.cancelled++
		s.mu.Unlock()
		return ctx.Err()
	}
	if s.fail != nil {
		return s.fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, wr := range batch {
		s.applied = append(s.applied, wr.Key)
	}
	return nil
}

// Close is bounded by its context whatever the source does: slow (the
// context ends mid-batch), failing, or hanging until its context ends.
// It returns when the context ends, with the batch in flight cancelled,
// and the error names exactly the keys the source does not have.
func TestWriteBehindCloseHonoursContext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     *batchSource
		applied int
		cause   error
	}{
		// Batches of 10 take 300 ms: three are in by the 1 s deadline,
		// the fourth is cancelled.
		{"slow", &batchSource{delay: 300 * time.Millisecond}, 30, nil},
		{"failing", &batchSource{delay: time.Millisecond, fail: errSource}, 0, errSource},
		{"hanging", &batchSource{hang: true}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w, err := NewWriteBehind[string, int](newMem(t, 1000).AsStore(), tc.src, WriteBehindOptions{BatchSize: 10})
				require.NoError(t, err)
				var all []string
				for i := range 100 {
					k := fmt.Sprintf("k%02d", i)
					all = append(all, k)
					require.NoError(t, w.Set(t.Context(), k, i))
				}
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				start := time.Now()
				err = w.Close(ctx)
				assert.Equal(t, time.Second, time.Since(start), "Close returns when its context ends")

				require.ErrorIs(t, err, ErrUnflushed)
				require.ErrorIs(t, err, context.DeadlineExceeded)
				if tc.cause != nil {
					require.ErrorIs(t, err, tc.cause, "the source's error is reported")
				}
				var ue *UnflushedError[string]
				require.ErrorAs(t, err, &ue)
				tc.src.mu.Lock()
				applied := append([]string(nil), tc.src.applied...)
				cancelled := tc.src.cancelled
				tc.src.mu.Unlock()
				require.Len(t, applied, tc.applied)
				assert.Equal(t, all[len(applied):], ue.Keys, "exactly the keys not in the source, oldest first")
				assert.Contains(t, err.Error(), fmt.Sprintf("%d writes not in the source", 100-tc.applied))
				if tc.name != "failing" {
					assert.Equal(t, 1, cancelled, "the batch in flight had its context cancelled")
				}
				var left []string
				for _, wr := range w.Unflushed() {
					left = append(left, wr.Key)
				}
				assert.Equal(t, ue.Keys, left, "Unflushed agrees with the error")
				assert.Equal(t, len(ue.Keys), w.Stats().Queued)

				// Nothing is written after Close returned.
				time.Sleep(time.Minute)
				tc.src.mu.Lock()
				assert.Len(t, tc.src.applied, tc.applied)
				tc.src.mu.Unlock()
			})
		})
	}
}

// Misuse returns at once: a zero WriteBehind, Close twice (also while the
// first is still running), Flush and Set after Close.
func TestWriteBehindMisuseReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var zero WriteBehind[string, int]
		ctx := context.Background() // no deadline: a hang would deadlock the bubble
		require.ErrorIs(t, zero.Set(ctx, "k", 1), ErrInvalidConfig)
		require.ErrorIs(t, zero.Delete(ctx, "k"), ErrInvalidConfig)
		require.ErrorIs(t, zero.Flush(ctx), ErrInvalidConfig)
		require.ErrorIs(t, zero.Close(ctx), ErrInvalidConfig)
		assert.Empty(t, zero.Unflushed())
		assert.Zero(t, zero.Stats())

		src := &batchSource{hang: true}
		w, err := NewWriteBehind[string, int](newMem(t, 10).AsStore(), src, WriteBehindOptions{})
		require.NoError(t, err)
		require.NoError(t, w.Set(ctx, "a", 1))
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		second := make(chan error, 1)
		go func() {
			time.Sleep(time.Millisecond) // the first Close is under way
			second <- w.Close(ctx)
		}()
		first := w.Close(cctx)
		require.ErrorIs(t, first, ErrUnflushed)
		assert.Equal(t, first, <-second, "a second Close returns the first's result")
		assert.Equal(t, first, w.Close(ctx))

		err = w.Flush(ctx)
		require.ErrorIs(t, err, ErrClosed)
		var ue *UnflushedError[string]
		require.ErrorAs(t, err, &ue)
		assert.Equal(t, []string{"a"}, ue.Keys)
		require.ErrorIs(t, w.Set(ctx, "b", 2), ErrClosed)
		require.ErrorIs(t, w.Delete(ctx, "a"), ErrClosed)

		// A second Close whose own context ends first does not wait.
		w2, err := NewWriteBehind[string, int](newMem(t, 10).AsStore(), &batchSource{hang: true}, WriteBehindOptions{})
		require.NoError(t, err)
		require.NoError(t, w2.Set(ctx, "a", 1))
		c1, cancel1 := context.WithTimeout(ctx, time.Hour)
		defer cancel1()
		go func() { _ = w2.Close(c1) }()
		time.Sleep(time.Millisecond)
		c2, cancel2 := context.WithTimeout(ctx, time.Second)
		defer cancel2()
		start := time.Now()
		require.ErrorIs(t, w2.Close(c2), context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))
		cancel1()
		synctest.Wait()
	})
}

// The error names the count and the first keys, and unwraps to the
// sentinel and the cause, if any.
func TestUnflushedErrorMessage(t *testing.T) {
	keys := make([]int, 12)
	for i := range keys {
		keys[i] = i
	}
	err := error(&UnflushedError[int]{Keys: keys, Cause: errSource})
	assert.Equal(t, "cache: write-behind: 12 writes not in the source, keys [0 1 2 3 4 5 6 7 8 9 ...]: source unavailable", err.Error())
	require.ErrorIs(t, err, ErrUnflushed)
	require.ErrorIs(t, err, errSource)
	err = &UnflushedError[int]{Keys: keys[:2]}
	assert.Equal(t, "cache: write-behind: 2 writes not in the source, keys [0 1]", err.Error())
	require.ErrorIs(t, err, ErrUnflushed)
	err = &UnflushedError[int]{Keys: keys[:10]} // all shown
	assert.Equal(t, "cache: write-behind: 10 writes not in the source, keys [0 1 2 3 4 5 6 7 8 9]", err.Error())
}

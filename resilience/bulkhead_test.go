package resilience

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBulkhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewBulkhead(BulkheadOptions{MaxConcurrent: 2, Name: "payments", MaxWaiting: 1, MaxWait: time.Second})
		require.NoError(t, err)
		p := Guarded[int](b)
		release := make(chan struct{})
		hold := func(context.Context) (int, error) { <-release; return 1, nil }
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { _, _ = p.Execute(t.Context(), hold) })
		}
		synctest.Wait()
		assert.Equal(t, 2, b.Stats().InUse)

		// Third waits in the queue, fourth is rejected at once.
		var waited atomic.Bool
		wg.Go(func() {
			_, err := p.Execute(t.Context(), func(context.Context) (int, error) { return 1, nil })
			waited.Store(err == nil)
		})
		synctest.Wait()
		assert.Equal(t, 1, b.Stats().Waiting)
		_, err = p.Execute(t.Context(), ok)
		assert.ErrorIs(t, err, ErrBulkheadFull)
		assert.Contains(t, err.Error(), `bulkhead "payments"`)

		close(release)
		wg.Wait()
		assert.True(t, waited.Load())
		st := b.Stats()
		assert.Equal(t, BulkheadStats{Capacity: 2, Admitted: 3, Rejected: 1, Waited: 1}, st)

		// A wait that outlasts MaxWait is rejected with a deadline cause.
		block := make(chan struct{})
		for range 2 {
			wg.Go(func() { _, _ = p.Execute(t.Context(), func(context.Context) (int, error) { <-block; return 0, nil }) })
		}
		synctest.Wait()
		start := time.Now()
		_, err = p.Execute(t.Context(), ok)
		assert.ErrorIs(t, err, ErrBulkheadFull)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))
		close(block)
		wg.Wait()
	})
	_, err := NewBulkhead(BulkheadOptions{MaxConcurrent: 0})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewBulkheads(BulkheadOptions{MaxConcurrent: 0})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewBulkhead(BulkheadOptions{MaxConcurrent: 1, MaxWaiting: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// Each dependency gets its own pool: filling one leaves the others free.
func TestBulkheadsSeparatePoolsPerDependency(t *testing.T) {
	set := must(NewBulkheads(BulkheadOptions{MaxConcurrent: 2}))
	slow := set.For("recommendations")
	assert.Same(t, slow, set.For("recommendations"))
	s1, ok1 := slow.TryAcquire()
	s2, ok2 := slow.TryAcquire()
	require.True(t, ok1 && ok2)
	_, err := Guarded[int](slow).Execute(t.Context(), ok)
	assert.ErrorIs(t, err, ErrBulkheadFull)
	assert.Contains(t, err.Error(), `"recommendations"`)
	v, err := Guarded[int](set.For("checkout")).Execute(t.Context(), ok)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	st := set.Stats()
	assert.Equal(t, 2, st["recommendations"].InUse)
	assert.Equal(t, uint64(1), st["checkout"].Admitted)
	s1.Release()
	s2.Release()
	assert.Zero(t, slow.Stats().InUse)
}

// Exit gives back only what Enter took: an Exit with no slot behind it (the
// zero Permit, a permit already given back, another guard's permit) returns
// at once and frees nothing, so the pool never admits more calls than it
// has slots.
func TestBulkheadExitWithoutEnter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := must(NewBulkhead(BulkheadOptions{MaxConcurrent: 1, Name: "db"}))
		other := must(NewBulkhead(BulkheadOptions{MaxConcurrent: 1}))
		b.Exit(Permit{}, nil) // nothing held: must not block

		first, err := b.Enter(t.Context())
		require.NoError(t, err)
		b.Exit(first, nil)
		second, err := b.Enter(t.Context())
		require.NoError(t, err)
		b.Exit(first, nil) // first's slot was given back already: second keeps its own
		foreign, err := other.Enter(t.Context())
		require.NoError(t, err)
		b.Exit(foreign, nil)
		_, err = b.Enter(t.Context())
		require.ErrorIs(t, err, ErrBulkheadFull, "a stale Exit freed the slot another call holds")
		assert.Equal(t, 1, b.Stats().InUse)
		assert.Equal(t, 1, other.Stats().InUse)

		b.Exit(second, nil)
		b.Exit(second, nil)
		assert.Zero(t, b.Stats().InUse)
		other.Exit(foreign, nil)
		assert.Zero(t, other.Stats().InUse)
	})
}

// A slot's Release is idempotent, on every copy: only the first frees it,
// and a late Release cannot free the slot a later caller took. Release of
// the zero slot does nothing.
func TestBulkheadSlotReleaseIsIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := must(NewBulkhead(BulkheadOptions{MaxConcurrent: 1}))
		BulkheadSlot{}.Release()
		a, ok := b.TryAcquire()
		require.True(t, ok)
		copyOfA := a
		a.Release()
		a.Release()
		c, err := b.Acquire(t.Context())
		require.NoError(t, err)
		copyOfA.Release()
		_, ok = b.TryAcquire()
		assert.False(t, ok, "a stale Release freed the slot c holds")
		_, err = b.Acquire(t.Context())
		assert.ErrorIs(t, err, ErrBulkheadFull)
		c.Release()
		d, ok := b.TryAcquire()
		assert.True(t, ok)
		d.Release()
		assert.Equal(t, BulkheadStats{Capacity: 1, Admitted: 3, Rejected: 1}, b.Stats())
	})
}

// Many goroutines releasing every slot twice leave the pool whole.
func TestBulkheadDoubleReleaseUnderLoad(t *testing.T) {
	b := must(NewBulkhead(BulkheadOptions{MaxConcurrent: 4, MaxWaiting: 64}))
	var inUse, peak atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				s, err := b.Acquire(t.Context())
				if !assert.NoError(t, err) {
					return
				}
				n := inUse.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				inUse.Add(-1)
				s.Release()
				s.Release()
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, peak.Load(), int64(4))
	assert.Equal(t, BulkheadStats{Capacity: 4, Admitted: 16 * 200, Waited: b.Stats().Waited}, b.Stats())
}

// A Bulkhead that NewBulkhead did not make — the zero value, a nil pointer,
// a pool of the zero Bulkheads — has no slots: it says so at once with an
// error wrapping ErrInvalidConfig instead of blocking or panicking.
func TestBulkheadZeroValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var zero Bulkhead
		_, err := zero.Enter(t.Context())
		require.ErrorIs(t, err, ErrInvalidConfig)
		assert.ErrorContains(t, err, "NewBulkhead")
		zero.Exit(Permit{}, nil)
		assert.Equal(t, BulkheadStats{}, zero.Stats())
		_, err = zero.Acquire(t.Context())
		require.ErrorIs(t, err, ErrInvalidConfig)
		_, took := zero.TryAcquire()
		assert.False(t, took)

		var nilBulkhead *Bulkhead
		_, err = Guarded[int](nilBulkhead).Execute(t.Context(), ok)
		require.ErrorIs(t, err, ErrInvalidConfig)

		var set Bulkheads
		var pool *Bulkhead
		require.NotPanics(t, func() { pool = set.For("search") })
		_, err = Guarded[int](pool).Execute(t.Context(), ok)
		require.ErrorIs(t, err, ErrInvalidConfig)
		assert.ErrorContains(t, err, `"search"`)
		assert.Same(t, pool, set.For("search"))
	})
}

// With no MaxWait, a queued call waits as long as it takes for a slot, and
// only its caller's context ends the wait early.
func TestBulkheadWaitsWithoutMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewBulkhead(BulkheadOptions{MaxConcurrent: 1, MaxWaiting: 1})
		require.NoError(t, err)
		held, err := b.Acquire(t.Context())
		require.NoError(t, err)
		got := make(chan error, 1)
		start := time.Now()
		go func() {
			s, err := b.Acquire(t.Context())
			if err == nil {
				s.Release()
			}
			got <- err
		}()
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, 1, b.Stats().Waiting)
		held.Release()
		require.NoError(t, <-got)
		assert.Equal(t, time.Hour, time.Since(start))

		held, err = b.Acquire(t.Context())
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		_, err = b.Acquire(ctx)
		assert.ErrorIs(t, err, ErrBulkheadFull)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		held.Release()
		assert.Equal(t, BulkheadStats{Capacity: 1, Admitted: 3, Rejected: 1, Waited: 1}, b.Stats())
	})
}

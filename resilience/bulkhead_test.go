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
		b, err := NewBulkhead(2, BulkheadOptions{Name: "payments", MaxWaiting: 1, MaxWait: time.Second})
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
	_, err := NewBulkhead(0, BulkheadOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewBulkheads(0, BulkheadOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewBulkhead(1, BulkheadOptions{MaxWaiting: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// Each dependency gets its own pool: filling one leaves the others free.
func TestBulkheadsSeparatePoolsPerDependency(t *testing.T) {
	set := must(NewBulkheads(2, BulkheadOptions{}))
	slow := set.For("recommendations")
	assert.Same(t, slow, set.For("recommendations"))
	require.True(t, slow.TryAcquire())
	require.True(t, slow.TryAcquire())
	_, err := Guarded[int](slow).Execute(t.Context(), ok)
	assert.ErrorIs(t, err, ErrBulkheadFull)
	assert.Contains(t, err.Error(), `"recommendations"`)
	v, err := Guarded[int](set.For("checkout")).Execute(t.Context(), ok)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	st := set.Stats()
	assert.Equal(t, 2, st["recommendations"].InUse)
	assert.Equal(t, uint64(1), st["checkout"].Admitted)
	slow.Release()
	slow.Release()
}

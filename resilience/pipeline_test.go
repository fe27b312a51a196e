package resilience

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		to, err := NewTimeout[int]("db", 100*time.Millisecond)
		require.NoError(t, err)
		start := time.Now()
		_, err = to.Execute(t.Context(), func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		assert.ErrorIs(t, err, ErrTimeout)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), `timeout "db"`)
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		assert.Equal(t, TimeoutStats{Calls: 1, Timeouts: 1}, to.Stats())

		v, err := to.Execute(t.Context(), func(context.Context) (int, error) { time.Sleep(50 * time.Millisecond); return 5, nil })
		require.NoError(t, err)
		assert.Equal(t, 5, v)

		// The caller's own cancellation is not reported as this timeout.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		_, err = to.Execute(ctx, func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
		assert.NotErrorIs(t, err, ErrTimeout)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	_, err := NewTimeout[int]("x", 0)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewTimeoutWith[int](-time.Second, TimeoutOptions{Name: "y"})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, `timeout "y" must be positive, got -1s`)
}

// WithTimeout replaces the clock behind the deadline: here a context whose
// deadline has already passed, as a simulation's virtual clock would end
// it, cuts a one-hour timeout at once.
func TestTimeoutWithItsOwnClock(t *testing.T) {
	var asked []time.Duration
	to, err := NewTimeoutWith[int](time.Hour, TimeoutOptions{Name: "virtual", WithTimeout: func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
		asked = append(asked, d)
		return context.WithDeadline(ctx, time.Unix(0, 0))
	}})
	require.NoError(t, err)
	start := time.Now()
	_, err = to.Execute(t.Context(), func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
	assert.ErrorIs(t, err, ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), `timeout "virtual"`)
	assert.Less(t, time.Since(start), time.Minute, "the hour passed on the given clock, not the wall clock")
	assert.Equal(t, []time.Duration{time.Hour}, asked)
	assert.Equal(t, TimeoutStats{Calls: 1, Timeouts: 1}, to.Stats())
}

func TestFallback(t *testing.T) {
	fb := NewFallbackValue(-1, func(err error) bool { return errors.Is(err, errBoom) })
	v, err := fb.Execute(t.Context(), fail)
	require.NoError(t, err)
	assert.Equal(t, -1, v)
	other := errors.New("other")
	_, err = fb.Execute(t.Context(), func(context.Context) (int, error) { return 0, other })
	assert.Equal(t, other, err, "errors the fallback does not handle pass through")
	v, err = fb.Execute(t.Context(), ok)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	assert.Equal(t, FallbackStats{Calls: 3, Fallbacks: 1}, fb.Stats())

	fn, err := NewFallbackFunc(func(_ context.Context, err error) (int, error) { return 0, errors.Join(err, other) }, nil)
	require.NoError(t, err)
	_, err = fn.Execute(t.Context(), fail)
	assert.ErrorIs(t, err, errBoom)
	assert.ErrorIs(t, err, other)
	_, err = NewFallbackFunc[int](nil, nil)
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func TestPipelineOrderAndErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var order []string
		trace := func(name string) Policy[int] {
			return policyFunc[int](func(ctx context.Context, fn func(context.Context) (int, error)) (int, error) {
				order = append(order, name)
				return fn(ctx)
			})
		}
		p, err := NewPipeline(trace("a"), trace("b"), trace("c"))
		require.NoError(t, err)
		_, err = p.Execute(t.Context(), ok)
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "b", "c"}, order, "first policy is outermost")

		// fallback → retry → breaker → bulkhead → timeout.
		retry := must(NewRetry[int](RetryOptions{MaxAttempts: 3, Backoff: Backoff{Base: time.Millisecond}}))
		breaker := must(NewCircuitBreaker[int](BreakerOptions{Trip: must(ConsecutiveFailures(2))}))
		bulk := must(NewBulkhead(4, BulkheadOptions{}))
		timeout := must(NewTimeout[int]("attempt", 50*time.Millisecond))
		fb := NewFallbackValue(42, nil)
		full := must(NewPipeline[int](fb, retry, breaker, Guarded[int](bulk), timeout))
		calls := 0
		hang := func(ctx context.Context) (int, error) { calls++; <-ctx.Done(); return 0, ctx.Err() }
		v, err := full.Execute(t.Context(), hang)
		require.NoError(t, err)
		assert.Equal(t, 42, v, "the fallback answers")
		assert.Equal(t, 2, calls, "the breaker opened after two timeouts; the third attempt was short-circuited")
		assert.Equal(t, uint64(1), breaker.Stats().Rejected)
		assert.Equal(t, uint64(3), retry.Stats().Attempts)

		// Without the fallback the error names the policy and keeps causes.
		inner := must(NewPipeline[int](must(NewRetry[int](RetryOptions{MaxAttempts: 2, Backoff: Backoff{Base: time.Millisecond}})), timeout))
		_, err = inner.Execute(t.Context(), hang)
		assert.ErrorIs(t, err, ErrRetriesExhausted)
		assert.ErrorIs(t, err, ErrTimeout)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	_, err := NewPipeline[int]()
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewPipeline[int](nil)
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

type policyFunc[T any] func(ctx context.Context, fn func(context.Context) (T, error)) (T, error)

func (f policyFunc[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	return f(ctx, fn)
}

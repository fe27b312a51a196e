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
		to, err := NewTimeout[int](TimeoutOptions{Name: "db", Timeout: 100 * time.Millisecond})
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
	_, err := NewTimeout[int](TimeoutOptions{Name: "x", Timeout: 0})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewTimeout[int](TimeoutOptions{Timeout: -time.Second, Name: "y"})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, `timeout "y" Timeout must be set to a positive duration, got -1s`)
}

// A call that outlives its timeout is cut at the deadline: the error
// names the policy and wraps ErrTimeout and context.DeadlineExceeded.
func TestTimeoutCutsAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		to, err := NewTimeout[int](TimeoutOptions{Timeout: time.Hour, Name: "slow"})
		require.NoError(t, err)
		start := time.Now()
		_, err = to.Execute(t.Context(), func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
		assert.ErrorIs(t, err, ErrTimeout)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), `timeout "slow"`)
		assert.Equal(t, time.Hour, time.Since(start), "cut exactly at the deadline")
		assert.Equal(t, TimeoutStats{Calls: 1, Timeouts: 1}, to.Stats())
	})
}

func TestFallback(t *testing.T) {
	fb := must(NewFallback(FallbackOptions[int]{Value: -1, On: func(err error) bool { return errors.Is(err, errBoom) }}))
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

	fn, err := NewFallback(FallbackOptions[int]{Func: func(_ context.Context, err error) (int, error) { return 9, errors.Join(err, other) }})
	require.NoError(t, err)
	v, err = fn.Execute(t.Context(), fail)
	assert.ErrorIs(t, err, errBoom, "Func is given the call's error")
	assert.ErrorIs(t, err, other, "and its own error is returned")
	assert.Equal(t, 9, v)

	zero := must(NewFallback(FallbackOptions[int]{}))
	v, err = zero.Execute(t.Context(), fail)
	require.NoError(t, err)
	assert.Zero(t, v, "the zero Value is an answer")
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
		bulk := must(NewBulkhead(BulkheadOptions{MaxConcurrent: 4}))
		timeout := must(NewTimeout[int](TimeoutOptions{Name: "attempt", Timeout: 50 * time.Millisecond}))
		fb := must(NewFallback(FallbackOptions[int]{Value: 42}))
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

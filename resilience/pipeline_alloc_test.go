//go:build !race

package resilience

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// On the success path the documented composition allocates nothing of its
// own: only the timeout's derived context (context.WithTimeout) does. The
// race detector changes allocation counts, hence the build tag.
func TestPipelineSuccessPathAllocations(t *testing.T) {
	ctx := context.Background()
	noTimeout := must(NewPipeline[int](
		must(NewFallback(FallbackOptions[int]{})),
		must(NewRetry[int](RetryOptions{MaxAttempts: 3})),
		must(NewCircuitBreaker[int](BreakerOptions{})),
		Guarded[int](must(NewBulkhead(BulkheadOptions{MaxConcurrent: 8}))),
	))
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = noTimeout.Execute(ctx, okCall) }))

	timeout := must(NewTimeout[int](TimeoutOptions{Name: "t", Timeout: time.Second}))
	alone := testing.AllocsPerRun(1000, func() { _, _ = timeout.Execute(ctx, okCall) })
	full := must(NewPipeline[int](
		must(NewFallback(FallbackOptions[int]{})),
		must(NewRetry[int](RetryOptions{MaxAttempts: 3})),
		must(NewCircuitBreaker[int](BreakerOptions{})),
		Guarded[int](must(NewBulkhead(BulkheadOptions{MaxConcurrent: 8}))),
		timeout,
	))
	assert.Equal(t, alone, testing.AllocsPerRun(1000, func() { _, _ = full.Execute(ctx, okCall) }), "the pipeline adds nothing to the timeout's allocations")

	// A policy this package does not know may keep the function it gets, so
	// the pipeline hands it a heap-allocated one — and still works.
	custom := must(NewPipeline[int](must(NewFallback(FallbackOptions[int]{})), policyFunc[int](func(ctx context.Context, fn func(context.Context) (int, error)) (int, error) { return fn(ctx) })))
	v, err := custom.Execute(ctx, okCall)
	assert.NoError(t, err)
	assert.Equal(t, 1, v)
}

// A bulkhead slot is a value: taking and giving one back allocates nothing.
func TestBulkheadSlotAllocations(t *testing.T) {
	ctx := context.Background()
	b := must(NewBulkhead(BulkheadOptions{MaxConcurrent: 8}))
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		s, _ := b.Acquire(ctx)
		s.Release()
		s, _ = b.TryAcquire()
		s.Release()
		p, _ := b.Enter(ctx)
		b.Exit(p, nil)
	}))
}

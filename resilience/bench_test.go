package resilience

import (
	"context"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

// failsafe-go is measured beside each policy and the pipeline in the bench
// module (bench/resilience_test.go), which keeps it out of this module.

func okCall(context.Context) (int, error) { return 1, nil }

// The wrapper against calling gobreaker directly, on the success path.
func BenchmarkCircuitBreaker_Execute(b *testing.B) {
	ctx := context.Background()
	b.Run("algo=gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[int](gobreaker.Settings{})
		req := func() (int, error) { return 1, nil }
		b.ReportAllocs()
		for b.Loop() {
			_, _ = cb.Execute(req)
		}
	})
	b.Run("algo=resilience", func(b *testing.B) {
		cb := must(NewCircuitBreaker[int](BreakerOptions{}))
		b.ReportAllocs()
		for b.Loop() {
			_, _ = cb.Execute(ctx, okCall)
		}
	})
	b.Run("algo=gobreaker/parallel", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[int](gobreaker.Settings{})
		req := func() (int, error) { return 1, nil }
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = cb.Execute(req)
			}
		})
	})
	b.Run("algo=resilience/parallel", func(b *testing.B) {
		cb := must(NewCircuitBreaker[int](BreakerOptions{}))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = cb.Execute(ctx, okCall)
			}
		})
	})
}

// benchmarkPolicy measures one policy's overhead on the success path,
// serially or from GOMAXPROCS goroutines.
func benchmarkPolicy(b *testing.B, p Policy[int], parallel bool) {
	ctx := context.Background()
	b.ReportAllocs()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = p.Execute(ctx, okCall)
			}
		})
		return
	}
	for b.Loop() {
		_, _ = p.Execute(ctx, okCall)
	}
}

func BenchmarkPolicy_Execute(b *testing.B) {
	for _, c := range []struct {
		name string
		p    func() Policy[int]
	}{
		{"direct", func() Policy[int] {
			return policyFunc[int](func(ctx context.Context, fn func(context.Context) (int, error)) (int, error) { return fn(ctx) })
		}},
		{"retry", func() Policy[int] { return must(NewRetry[int](RetryOptions{MaxAttempts: 3})) }},
		{"retry+budget", func() Policy[int] {
			return must(NewRetry[int](RetryOptions{MaxAttempts: 3, Budget: must(NewBudget(BudgetOptions{Ratio: 0.1}))}))
		}},
		{"timeout", func() Policy[int] { return must(NewTimeout[int](TimeoutOptions{Name: "t", Timeout: time.Second})) }},
		{"fallback", func() Policy[int] { return must(NewFallback(FallbackOptions[int]{})) }},
		{"bulkhead", func() Policy[int] { return Guarded[int](must(NewBulkhead(BulkheadOptions{MaxConcurrent: 8}))) }},
		{"throttle", func() Policy[int] { return Guarded[int](must(NewAdaptiveThrottle(ThrottleOptions{}))) }},
		{"shedder", func() Policy[int] { return Guarded[int](must(NewLoadShedder(ShedderOptions{}))) }},
		{"hedge", func() Policy[int] { return must(NewHedge[int](HedgeOptions{Delay: time.Second})) }},
		{"pipeline", func() Policy[int] { return ourPipeline() }},
	} {
		b.Run("algo="+c.name, func(b *testing.B) { benchmarkPolicy(b, c.p(), false) })
	}
}

// A bulkhead slot taken and given back directly, serial and from
// GOMAXPROCS goroutines.
func BenchmarkBulkhead_Acquire(b *testing.B) {
	ctx := context.Background()
	b.Run("algo=resilience", func(b *testing.B) {
		bh := must(NewBulkhead(BulkheadOptions{MaxConcurrent: 8, MaxWaiting: 1 << 20}))
		b.ReportAllocs()
		for b.Loop() {
			s, _ := bh.Acquire(ctx)
			s.Release()
		}
	})
	b.Run("algo=resilience/parallel", func(b *testing.B) {
		bh := must(NewBulkhead(BulkheadOptions{MaxConcurrent: 8, MaxWaiting: 1 << 20}))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s, _ := bh.Acquire(ctx)
				s.Release()
			}
		})
	})
}

// ourPipeline is the documented composition: fallback → retry → breaker →
// bulkhead → timeout.
func ourPipeline() Policy[int] {
	return must(NewPipeline[int](
		must(NewFallback(FallbackOptions[int]{})),
		must(NewRetry[int](RetryOptions{MaxAttempts: 3})),
		must(NewCircuitBreaker[int](BreakerOptions{})),
		Guarded[int](must(NewBulkhead(BulkheadOptions{MaxConcurrent: 8}))),
		must(NewTimeout[int](TimeoutOptions{Name: "t", Timeout: time.Second})),
	))
}

func BenchmarkBackoff_Delay(b *testing.B) {
	for _, j := range []Jitter{JitterNone, JitterFull, JitterEqual, JitterDecorrelated} {
		b.Run("algo="+j.String(), func(b *testing.B) {
			bo := Backoff{Base: 5 * time.Millisecond, Max: 2 * time.Second, Jitter: j}
			var prev time.Duration
			b.ReportAllocs()
			for b.Loop() {
				prev = bo.Delay(5, prev, 0.5)
			}
		})
	}
}

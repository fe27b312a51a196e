package bench

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/fallback"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/sysdesign-go/sysdesign/resilience"
)

// The peer of package resilience: github.com/failsafe-go/failsafe-go,
// configured alike. (gobreaker, which resilience.CircuitBreaker wraps, is
// measured beside it in package resilience itself.)

// must unwraps a constructor's result where its arguments are valid.
func must[P any](p P, err error) P {
	if err != nil {
		panic(err)
	}
	return p
}

func okCall(context.Context) (int, error) { return 1, nil }

// pipeline is package resilience's documented composition: fallback →
// retry → breaker → bulkhead → timeout.
func pipeline() resilience.Policy[int] {
	return must(resilience.NewPipeline[int](
		must(resilience.NewFallback(resilience.FallbackOptions[int]{})),
		must(resilience.NewRetry[int](resilience.RetryOptions{MaxAttempts: 3})),
		must(resilience.NewCircuitBreaker[int](resilience.BreakerOptions{})),
		resilience.Guarded[int](must(resilience.NewBulkhead(resilience.BulkheadOptions{MaxConcurrent: 8}))),
		must(resilience.NewTimeout[int](resilience.TimeoutOptions{Name: "t", Timeout: time.Second})),
	))
}

// failsafe-go's equivalents of package resilience's defaults: 3 attempts
// with exponential backoff from 100 ms to 10 s; a breaker that opens on 5
// failures in a row for 60 s; 8 slots; a 1 s timeout; a fallback value.
func fsRetry() failsafe.Policy[int] {
	return retrypolicy.NewBuilder[int]().WithMaxAttempts(3).WithBackoff(100*time.Millisecond, 10*time.Second).Build()
}

func fsBreaker() failsafe.Policy[int] {
	return circuitbreaker.NewBuilder[int]().WithFailureThreshold(5).WithDelay(time.Minute).Build()
}

func fsBulkhead() failsafe.Policy[int]          { return bulkhead.New[int](8) }
func fsTimeout() failsafe.Policy[int]           { return timeout.New[int](time.Second) }
func fsFallback() failsafe.Policy[int]          { return fallback.NewWithResult(0) }
func fsOK(failsafe.Execution[int]) (int, error) { return 1, nil }

// benchmarkPolicy measures one of package resilience's policies on the
// success path, serially or from GOMAXPROCS goroutines.
func benchmarkPolicy(b *testing.B, p resilience.Policy[int], parallel bool) {
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

// benchmarkFailsafe measures a failsafe-go executor on the success path. The
// call goes through GetWithExecution, failsafe-go's context-aware form
// (the function can read the execution's context, as okCall gets ctx).
func benchmarkFailsafe(b *testing.B, ex failsafe.Executor[int], parallel bool) {
	b.ReportAllocs()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = ex.GetWithExecution(fsOK)
			}
		})
		return
	}
	for b.Loop() {
		_, _ = ex.GetWithExecution(fsOK)
	}
}

// The failsafe-go harness really runs each policy: every executor returns
// the call's result, and its fallback replaces an error.
func TestFailsafePeerHarness(t *testing.T) {
	for _, p := range []failsafe.Policy[int]{fsRetry(), fsBreaker(), fsBulkhead(), fsTimeout(), fsFallback()} {
		if v, err := failsafe.With(p).GetWithExecution(fsOK); v != 1 || err != nil {
			t.Fatalf("%T returned %d, %v", p, v, err)
		}
	}
	v, err := failsafe.With(fsFallback()).GetWithExecution(func(failsafe.Execution[int]) (int, error) { return 1, context.DeadlineExceeded })
	if v != 0 || err != nil {
		t.Fatalf("the fallback returned %d, %v; want 0, nil", v, err)
	}
}

// BenchmarkResilience_Policy measures each policy and the composed
// pipeline on the success path, package resilience beside
// github.com/failsafe-go/failsafe-go configured alike, serial and from
// GOMAXPROCS goroutines. Compare algo=resilience with algo=failsafe-go
// within each policy.
func BenchmarkResilience_Policy(b *testing.B) {
	for _, c := range []struct {
		name   string
		ours   func() resilience.Policy[int]
		theirs func() failsafe.Executor[int]
	}{
		{"retry", func() resilience.Policy[int] {
			return must(resilience.NewRetry[int](resilience.RetryOptions{MaxAttempts: 3}))
		}, func() failsafe.Executor[int] { return failsafe.With(fsRetry()) }},
		{"breaker", func() resilience.Policy[int] {
			return must(resilience.NewCircuitBreaker[int](resilience.BreakerOptions{}))
		}, func() failsafe.Executor[int] { return failsafe.With(fsBreaker()) }},
		{"bulkhead", func() resilience.Policy[int] {
			return resilience.Guarded[int](must(resilience.NewBulkhead(resilience.BulkheadOptions{MaxConcurrent: 8})))
		}, func() failsafe.Executor[int] { return failsafe.With(fsBulkhead()) }},
		{"timeout", func() resilience.Policy[int] {
			return must(resilience.NewTimeout[int](resilience.TimeoutOptions{Name: "t", Timeout: time.Second}))
		}, func() failsafe.Executor[int] { return failsafe.With(fsTimeout()) }},
		{"fallback", func() resilience.Policy[int] { return must(resilience.NewFallback(resilience.FallbackOptions[int]{})) },
			func() failsafe.Executor[int] { return failsafe.With(fsFallback()) }},
		{"pipeline", pipeline, func() failsafe.Executor[int] {
			return failsafe.With(fsFallback(), fsRetry(), fsBreaker(), fsBulkhead(), fsTimeout())
		}},
	} {
		for _, par := range []bool{false, true} {
			suffix := ""
			if par {
				suffix = "/parallel"
			}
			b.Run("policy="+c.name+"/algo=resilience"+suffix, func(b *testing.B) { benchmarkPolicy(b, c.ours(), par) })
			b.Run("policy="+c.name+"/algo=failsafe-go"+suffix, func(b *testing.B) { benchmarkFailsafe(b, c.theirs(), par) })
		}
	}
}

// BenchmarkResilience_Bulkhead measures a bulkhead slot taken and given
// back directly, serial and from GOMAXPROCS goroutines: package
// resilience's Bulkhead.Acquire beside failsafe-go's bulkhead permit.
func BenchmarkResilience_Bulkhead(b *testing.B) {
	ctx := context.Background()
	b.Run("algo=resilience", func(b *testing.B) {
		bh := must(resilience.NewBulkhead(resilience.BulkheadOptions{MaxConcurrent: 8, MaxWaiting: 1 << 20}))
		b.ReportAllocs()
		for b.Loop() {
			s, _ := bh.Acquire(ctx)
			s.Release()
		}
	})
	b.Run("algo=resilience/parallel", func(b *testing.B) {
		bh := must(resilience.NewBulkhead(resilience.BulkheadOptions{MaxConcurrent: 8, MaxWaiting: 1 << 20}))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s, _ := bh.Acquire(ctx)
				s.Release()
			}
		})
	})
	b.Run("algo=failsafe-go", func(b *testing.B) {
		bh := bulkhead.New[int](8)
		b.ReportAllocs()
		for b.Loop() {
			_ = bh.AcquirePermit(ctx)
			bh.ReleasePermit()
		}
	})
	b.Run("algo=failsafe-go/parallel", func(b *testing.B) {
		bh := bulkhead.New[int](8)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = bh.AcquirePermit(ctx)
				bh.ReleasePermit()
			}
		})
	})
}

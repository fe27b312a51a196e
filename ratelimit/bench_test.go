package ratelimit

import (
	"context"
	"testing"
	"time"
)

// The peers (golang.org/x/time/rate, go.uber.org/ratelimit,
// sethvargo/go-limiter) are measured beside these limiters in the bench
// module (bench/ratelimit_test.go), which keeps them out of this module;
// per-key limits over 100,000 and 1,000,000 keys, with their heap per
// key, are measured there only (BenchmarkRatelimit_Keyed), beside
// go-limiter's.

// benchLimit admits a million events a second: at tens of nanoseconds per
// call both the allow and the deny paths run.
var benchLimit = Limit{Events: 1_000_000, Per: time.Second, Burst: 1_000_000}

// allower is the shape every single-key limiter benchmarked here has.
type allower interface{ Allow() bool }

func benchAllowers(b *testing.B) map[string]allower {
	out := map[string]allower{}
	for _, alg := range Algorithms {
		lim, err := New(alg, benchLimit)
		if err != nil {
			b.Fatal(err)
		}
		out["algo="+alg.String()] = lim.(allower)
	}
	return out
}

var benchOrder = []string{"algo=token-bucket", "algo=gcra", "algo=leaky-bucket",
	"algo=fixed-window", "algo=sliding-window", "algo=sliding-log"}

// BenchmarkLimiter_Allow measures one key's Allow (with its time.Now)
// for every algorithm.
func BenchmarkLimiter_Allow(b *testing.B) {
	lims := benchAllowers(b)
	for _, name := range benchOrder {
		b.Run(name, func(b *testing.B) {
			l := lims[name]
			b.ReportAllocs()
			for b.Loop() {
				l.Allow()
			}
		})
	}
}

// BenchmarkLimiter_AllowParallel is the same under RunParallel: every
// goroutine hits the one key.
func BenchmarkLimiter_AllowParallel(b *testing.B) {
	lims := benchAllowers(b)
	for _, name := range benchOrder {
		b.Run(name, func(b *testing.B) {
			l := lims[name]
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.Allow()
				}
			})
		})
	}
}

// BenchmarkLeakyBucket_Take measures the pacer's Take at a rate high
// enough that it never sleeps.
func BenchmarkLeakyBucket_Take(b *testing.B) {
	b.Run("algo=leaky-bucket", func(b *testing.B) {
		lb, err := NewLeakyBucket(Limit{Events: 1_000_000_000, Per: time.Second, Burst: 1})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = lb.Take(ctx)
		}
	})
}

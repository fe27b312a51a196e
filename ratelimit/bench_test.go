package ratelimit

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// The peers (golang.org/x/time/rate, go.uber.org/ratelimit,
// sethvargo/go-limiter) are measured beside these limiters in the bench
// module (bench/ratelimit_test.go), which keeps them out of this module.

// benchLimit admits a million events a second: at tens of nanoseconds per
// call both the allow and the deny paths run.
var benchLimit = Limit{Events: 1_000_000, Per: time.Second, Burst: 1_000_000}

// allower is the shape every single-key limiter benchmarked here has.
type allower interface{ Allow() bool }

func benchAllowers(b *testing.B) map[string]allower {
	out := map[string]allower{}
	for _, alg := range Algorithms {
		lim, err := New(alg, benchLimit, Options{})
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
		lb, err := NewLeakyBucket(Limit{Events: 1_000_000_000, Per: time.Second, Burst: 1}, Options{})
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

const benchKeys = 100_000

func benchKeyNames() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "203.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	return keys
}

// heapBytes returns the live heap after a collection.
func heapBytes() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkKeyed_Allow measures per-key limits over 100,000 distinct keys
// and reports the heap each needs per key. Keys stay for the whole run (an
// hour's idle timeout), so only lookups are measured.
func BenchmarkKeyed_Allow(b *testing.B) {
	keys := benchKeyNames()
	ctx := context.Background()
	type take func(key string)
	setups := []struct {
		name string
		make func(b *testing.B) (take, func())
	}{
		{"algo=gcra", func(b *testing.B) (take, func()) {
			k, err := NewKeyed(func() (Limiter, error) { return NewGCRA(PerSecond(100), Options{}) }, KeyedOptions{MaxKeys: 2 * benchKeys, IdleTimeout: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			return func(key string) { _, _ = k.AllowN(ctx, key, 1) }, func() {}
		}},
		{"algo=sliding-window", func(b *testing.B) (take, func()) {
			k, err := NewKeyed(func() (Limiter, error) { return NewSlidingWindow(PerSecond(100), Options{}) }, KeyedOptions{MaxKeys: 2 * benchKeys, IdleTimeout: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			return func(key string) { _, _ = k.AllowN(ctx, key, 1) }, func() {}
		}},
	}
	for _, s := range setups {
		for _, parallel := range []bool{false, true} {
			name := s.name
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				before := heapBytes()
				f, closeFn := s.make(b)
				defer closeFn()
				for _, k := range keys {
					f(k)
				}
				perKey := float64(int64(heapBytes())-int64(before)) / benchKeys
				// ReportMetric after the loop: b.Loop's first call resets
				// user metrics.
				defer func() { b.ReportMetric(perKey, "B/key") }()
				b.ReportAllocs()
				if !parallel {
					i := 0
					for b.Loop() {
						f(keys[i])
						if i++; i == benchKeys {
							i = 0
						}
					}
					return
				}
				var mu sync.Mutex
				seed := 0
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					mu.Lock()
					i := seed * 7919
					seed++
					mu.Unlock()
					for pb.Next() {
						f(keys[i%benchKeys])
						i++
					}
				})
			})
		}
	}
}

// BenchmarkRedis_AllowN measures distributed decisions against the local
// Redis with 1, 8 and 64 concurrent clients, one round trip each, and
// reports decisions per second.
func BenchmarkRedis_AllowN(b *testing.B) {
	db := redistest.New(b)
	for _, alg := range redisAlgorithms {
		r, err := NewRedis(db.Client, alg, RedisOptions{Prefix: db.Prefix + alg.String() + ":", Timeout: 5 * time.Second}, PerSecond(1_000_000))
		if err != nil {
			b.Fatal(err)
		}
		for _, clients := range []int{1, 8, 64} {
			b.Run("algo="+alg.String()+"/clients="+strconv.Itoa(clients), func(b *testing.B) {
				b.ReportAllocs()
				ctx := context.Background()
				var wg sync.WaitGroup
				work := make(chan struct{}, clients)
				start := time.Now()
				for c := range clients {
					key := "k" + strconv.Itoa(c%8)
					wg.Go(func() {
						for range work {
							if _, err := r.AllowN(ctx, key, 1); err != nil {
								b.Error(err)
							}
						}
					})
				}
				for b.Loop() {
					work <- struct{}{}
				}
				close(work)
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
			})
		}
	}
}

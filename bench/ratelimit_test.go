package bench

import (
	"context"
	mathrand "math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-limiter/memorystore"
	uber "go.uber.org/ratelimit"
	"golang.org/x/time/rate"

	"github.com/sysdesign-go/sysdesign/ratelimit"
)

// The peers of package ratelimit: golang.org/x/time/rate (a token bucket),
// go.uber.org/ratelimit (a pacer, the leaky bucket as a meter) and
// github.com/sethvargo/go-limiter's memorystore (per-key token buckets).

// rateLimit admits a million events a second: at tens of nanoseconds per
// call both the allow and the deny paths run.
var rateLimit = ratelimit.Limit{Events: 1_000_000, Per: time.Second, Burst: 1_000_000}

// allower is the shape every single-key limiter benchmarked here has:
// ratelimit.Limiter and rate.Limiter both have it.
type allower interface{ Allow() bool }

// allowers are every algorithm of package ratelimit, each beside the peers
// of its kind, in the order they are reported.
func allowers(b *testing.B) []namedAllower {
	out := []namedAllower{}
	for _, alg := range ratelimit.Algorithms {
		lim, err := ratelimit.New(alg, rateLimit)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, namedAllower{alg.String(), lim})
		if alg == ratelimit.AlgTokenBucket {
			out = append(out, namedAllower{"x-time-rate", rate.NewLimiter(rate.Limit(rateLimit.Events), rateLimit.Burst)})
		}
	}
	return out
}

// namedAllower is a limiter under its sub-benchmark name.
type namedAllower struct {
	name string
	l    allower
}

// BenchmarkRatelimit_Allow measures one key's Allow (with its time.Now)
// for every algorithm beside golang.org/x/time/rate's Allow, on one
// goroutine and on all of them (every goroutine on the one key).
func BenchmarkRatelimit_Allow(b *testing.B) {
	for _, a := range allowers(b) {
		b.Run("algo="+a.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu, _ := processCPU()
			for b.Loop() {
				a.l.Allow()
			}
			reportCPU(b, cpu)
		})
	}
	for _, a := range allowers(b) {
		b.Run("algo="+a.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			cpu, _ := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					a.l.Allow()
				}
			})
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkRatelimit_Take compares the leaky bucket's pacer with
// go.uber.org/ratelimit's Take at a rate high enough that neither sleeps.
func BenchmarkRatelimit_Take(b *testing.B) {
	b.Run("algo=leaky-bucket", func(b *testing.B) {
		lb, err := ratelimit.NewLeakyBucket(ratelimit.Limit{Events: 1_000_000_000, Per: time.Second, Burst: 1})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = lb.Take(ctx)
		}
	})
	b.Run("algo=uber-ratelimit", func(b *testing.B) {
		l := uber.New(1_000_000_000, uber.WithoutSlack)
		b.ReportAllocs()
		for b.Loop() {
			l.Take()
		}
	})
}

// rateKeys are the numbers of distinct keys BenchmarkRatelimit_Keyed holds.
var rateKeys = []int{100_000, 1_000_000}

func rateKeyNames(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "203.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	return keys
}

// reportCPU adds the process CPU time per operation since start as
// "cpu-ns/op": on a machine shared with other work it shows what an
// operation costs when ns/op also counts the time the benchmark waited
// for a core.
func reportCPU(b *testing.B, start time.Duration) {
	if end, ok := processCPU(); ok && b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// heapBytes returns the live heap after a collection.
func heapBytes() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// keyedOf returns a per-key limiter of package ratelimit with the
// algorithm alg, holding up to twice n keys and keeping idle keys for an
// hour.
func keyedOf(alg ratelimit.Algorithm) func(b *testing.B, n int) (func(key string), func()) {
	return func(b *testing.B, n int) (func(key string), func()) {
		k, err := ratelimit.NewKeyed(alg, ratelimit.KeyedOptions{MaxKeys: 2 * n, IdleTimeout: time.Hour}, ratelimit.PerSecond(100))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		return func(key string) { _, _ = k.Decide(ctx, key, 1) }, func() {}
	}
}

// BenchmarkRatelimit_Keyed measures per-key limits over 100,000 and
// 1,000,000 distinct keys, package ratelimit's Keyed (for each algorithm)
// beside github.com/sethvargo/go-limiter's memorystore, and reports the
// heap each needs per key. Keys stay for the whole run (an hour's idle
// timeout, as the peer's six-hour sweep), so only lookups are measured.
// The heap is measured after the fill, one event per key: a sliding
// log's grows with the events its window holds (8 bytes each, its ring
// doubling), where every other state has a fixed size.
//
// -count repeats each sub-benchmark back to back, so on a shared machine
// a change of load falls between ours and the peer's: to compare them
// interleaved, run the compiled test binary with -test.count 1 several
// times over and give benchstat every run.
func BenchmarkRatelimit_Keyed(b *testing.B) {
	type setup struct {
		name string
		make func(b *testing.B, n int) (take func(key string), closeFn func())
	}
	setups := []setup{}
	for _, alg := range ratelimit.Algorithms {
		setups = append(setups, setup{alg.String(), keyedOf(alg)})
	}
	setups = append(setups, setup{"sethvargo-memorystore", func(b *testing.B, _ int) (func(key string), func()) {
		s, err := memorystore.New(&memorystore.Config{Tokens: 100, Interval: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		return func(key string) { _, _, _, _, _ = s.Take(ctx, key) }, func() { _ = s.Close(ctx) }
	}})
	for _, n := range rateKeys {
		keys := rateKeyNames(n)
		// Real traffic does not visit keys in the order they were created:
		// a peer that allocates one object per key in creation order finds
		// the next key's object beside the last one's in the sequential
		// walk, which a hash table's slots never are. The shuffled walk
		// visits the same keys in a fixed random order. The key strings
		// themselves lie in creation order too, so the shuffled walk also
		// misses the cache on each key's bytes, for every limiter alike;
		// the walk that keeps the key order but fills the limiter in the
		// shuffled order (unrelated-fill) takes away the first effect and
		// keeps the second.
		shuffled := slices.Clone(keys)
		mathrand.New(mathrand.NewPCG(1, uint64(n))).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, s := range setups {
			// One limiter per setup, filled once by the first of the serial
			// and the parallel benchmark that -bench selects, serves both.
			var take func(key string)
			closeFn := func() {}
			var perKey float64
			fill := func(b *testing.B, order []string) {
				if take != nil {
					return
				}
				before := heapBytes()
				take, closeFn = s.make(b, n)
				for _, k := range order {
					take(k)
				}
				perKey = float64(int64(heapBytes())-int64(before)) / float64(n)
			}
			name := "keys=" + strconv.Itoa(n) + "/algo=" + s.name
			serial := func(filled, order []string) func(b *testing.B) {
				return func(b *testing.B) {
					fill(b, filled)
					b.ReportAllocs()
					cpu, _ := processCPU()
					i := 0
					for b.Loop() {
						take(order[i])
						if i++; i == n {
							i = 0
						}
					}
					// ReportMetric after the loop: b.Loop's first call
					// resets user metrics.
					b.ReportMetric(perKey, "B/key")
					reportCPU(b, cpu)
				}
			}
			b.Run(name, serial(keys, keys))
			b.Run(name+"/shuffled", serial(keys, shuffled))
			b.Run(name+"/parallel", func(b *testing.B) {
				fill(b, keys)
				b.ReportAllocs()
				var mu sync.Mutex
				seed := 0
				cpu, _ := processCPU()
				b.RunParallel(func(pb *testing.PB) {
					mu.Lock()
					i := seed * 7919
					seed++
					mu.Unlock()
					for pb.Next() {
						take(keys[i%n])
						i++
					}
				})
				b.ReportMetric(perKey, "B/key")
				reportCPU(b, cpu)
			})
			closeFn()
			// A second limiter, filled in the shuffled order and walked in
			// the key order.
			take, closeFn = nil, func() {}
			b.Run(name+"/unrelated-fill", serial(shuffled, keys))
			closeFn()
		}
	}
}

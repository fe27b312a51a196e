// Package cachebench is the benchmark harness of the in-memory cache: the
// key stream, the fill and the measured loops that the cache package's own
// benchmarks run over its policies and that the bench module runs over the
// same policies beside peer caches, so both measure the same work.
package cachebench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysdesign-go/sysdesign/cache"
)

// Size is the capacity of every cache measured.
const Size = 1 << 14

// Cache is the part of a cache the benchmarks use.
type Cache interface {
	Get(k string) (int, bool)
	Set(k string, v int)
}

// Impl names a cache and makes a new, empty one of capacity entries.
type Impl struct {
	Name string
	New  func(tb testing.TB, capacity int) Cache
}

type memory struct{ m *cache.Memory[string, int] }

func (c memory) Get(k string) (int, bool) { return c.m.Get(k) }
func (c memory) Set(k string, v int)      { _ = c.m.Set(k, v) }

// Policies returns one Impl per [cache.Policies], named
// "sysdesign-<policy>".
func Policies() []Impl { return PoliciesTTL(0) }

// PoliciesTTL returns the Impls of Policies with ttl as every store's
// DefaultTTL (0: none).
func PoliciesTTL(ttl time.Duration) []Impl {
	var impls []Impl
	for _, p := range cache.Policies {
		impls = append(impls, Impl{Name: "sysdesign-" + p.String(), New: func(tb testing.TB, capacity int) Cache {
			m, err := cache.NewMemory(capacity, cache.MemoryOptions[string, int]{Policy: p, DefaultTTL: ttl})
			if err != nil {
				tb.Fatal(err)
			}
			return memory{m}
		}})
	}
	return impls
}

// Keys returns a seeded Zipf stream (exponent 1.01, the closest
// math/rand/v2 allows to 1) over 2×Size keys, so a full cache serves most
// but not all reads.
func Keys() []string {
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 1)), 1.01, 1, 2*Size-1)
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "key:" + strconv.FormatUint(z.Uint64(), 10)
	}
	return keys
}

// filled writes twice the capacity into c, so it is full and has evicted,
// then replays the key stream twice as cache-aside would (read, and write
// on a miss), so that each cache holds what its policy chose to keep from
// the measured distribution: without this the last-written keys, the
// coldest of the Zipf stream, would be resident and the run would time
// misses.
func filled(c Cache, keys []string) Cache {
	for i := range 2 * Size {
		c.Set("key:"+strconv.Itoa(2*Size-1-i), i)
	}
	for range 2 {
		for i, k := range keys {
			if _, ok := c.Get(k); !ok {
				c.Set(k, i)
			}
		}
	}
	return c
}

// reportCPU adds the process CPU time per operation since start as
// "cpu-ns/op". Beside ns/op, which counts wall time, it shows the work an
// operation costs whatever else runs on the machine: on a shared machine a
// parallel benchmark's threads may not run at once, which hides lock
// contention from ns/op, while CPU spent spinning or waiting on cache lines
// still shows here.
func reportCPU(b *testing.B, start time.Duration) {
	if end, ok := processCPU(); ok && b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// Mixed runs reads and writes in parallel on each full cache, as the
// sub-benchmark algo=<name>; writePct operations in 100 are a Set.
//
// Run it, and Insert, with a -benchtime in seconds (the default): under
// -benchtime Nx, testing.PB hands out one iteration at a time from a
// shared counter, an atomic add per operation that the goroutines contend
// on, which costs a cache whose goroutines run at once more than one whose
// second goroutine sleeps on its lock.
func Mixed(b *testing.B, impls []Impl, writePct int) {
	keys := Keys()
	mixed(b, impls, func(c Cache) Cache { return filled(c, keys) }, keys, writePct)
}

// Insert writes keys the cache does not hold, in parallel, into each
// full cache, as the sub-benchmark algo=<name>: the write path at its
// costliest — a new entry and an eviction per operation. (The 2²⁰ keys
// repeat only long after the cache has evicted them.)
func Insert(b *testing.B, impls []Impl) {
	keys := make([]string, 1<<20)
	for i := range keys {
		keys[i] = "new:" + strconv.Itoa(i)
	}
	fill := func(c Cache) Cache {
		for i := range Size {
			c.Set("key:"+strconv.Itoa(i), i)
		}
		return c
	}
	mixed(b, impls, fill, keys, 100)
}

// mixed is Mixed on the caches that fill returns, reading and writing
// keys, whose number is a power of two.
func mixed(b *testing.B, impls []Impl, fill func(Cache) Cache, keys []string, writePct int) {
	for _, impl := range impls {
		b.Run("algo="+impl.Name, func(b *testing.B) {
			c := fill(impl.New(b, Size))
			var seed atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			cpu, _ := processCPU()
			defer reportCPU(b, cpu)
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(1) * 7919)
				for pb.Next() {
					k := keys[i&(len(keys)-1)]
					if writePct > 0 && i%100 < writePct {
						c.Set(k, i)
					} else {
						c.Get(k)
					}
					i++
				}
			})
		})
	}
}

// MixedSerial is Mixed on one goroutine: the cost of one operation
// without a second goroutine's contention, which a cache under one lock
// avoids in Mixed by letting the second goroutine sleep.
func MixedSerial(b *testing.B, impls []Impl, writePct int) {
	keys := Keys()
	for _, impl := range impls {
		b.Run("algo="+impl.Name, func(b *testing.B) {
			c := filled(impl.New(b, Size), keys)
			b.ReportAllocs()
			i := 0
			cpu, _ := processCPU()
			defer reportCPU(b, cpu)
			for b.Loop() {
				k := keys[i&(len(keys)-1)]
				if writePct > 0 && i%100 < writePct {
					c.Set(k, i)
				} else {
					c.Get(k)
				}
				i++
			}
		})
	}
}

// GetSerial runs Get on one goroutine on each full cache, for allocation
// checks and the cost of one lookup.
func GetSerial(b *testing.B, impls []Impl) { MixedSerial(b, impls, 0) }

// Fill inserts n distinct keys into each cache of capacity n, as the
// sub-benchmark algo=<name>/entries=<n>, and reports what the full cache
// costs and holds: "B/entry", the heap it holds per entry (the keys
// themselves are allocated beforehand and not counted), and
// "resident-%", the share of the n keys still in it — below 100 when a
// cache evicts before it is full.
func Fill(b *testing.B, impls []Impl, n int) {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
	}
	for _, impl := range impls {
		b.Run(fmt.Sprintf("algo=%s/entries=%d", impl.Name, n), func(b *testing.B) {
			var bytes, resident float64
			runs := 0
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				c := impl.New(b, n)
				for i, k := range keys {
					c.Set(k, i)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				bytes += (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
				for _, k := range keys {
					if _, ok := c.Get(k); ok {
						resident++
					}
				}
				runs++
				runtime.KeepAlive(c)
			}
			b.ReportMetric(bytes/float64(runs), "B/entry")
			b.ReportMetric(100*resident/float64(runs*n), "resident-%")
		})
	}
}

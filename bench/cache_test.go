package bench

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/internal/sim"
)

// benchCache is the part of a cache the comparison benchmarks use.
type benchCache interface {
	get(k string) (int, bool)
	set(k string, v int)
}

type memBench struct{ m *cache.Memory[string, int] }

func (c memBench) get(k string) (int, bool) { return c.m.Get(k) }
func (c memBench) set(k string, v int)      { _ = c.m.Set(k, v) }

type otterBench struct{ c *otter.Cache[string, int] }

func (c otterBench) get(k string) (int, bool) { return c.c.GetIfPresent(k) }
func (c otterBench) set(k string, v int)      { c.c.Set(k, v) }

type lruBench struct{ c *lru.Cache[string, int] }

func (c lruBench) get(k string) (int, bool) { return c.c.Get(k) }
func (c lruBench) set(k string, v int)      { c.c.Add(k, v) }

const benchSize = 1 << 14

// benchImpls lists every cache the benchmarks compare: this package's
// policies beside otter v2 (W-TinyLFU) and golang-lru v2 (LRU).
func benchImpls(b testing.TB) []struct {
	name string
	make func() benchCache
} {
	impls := []struct {
		name string
		make func() benchCache
	}{}
	for _, p := range cache.Policies {
		impls = append(impls, struct {
			name string
			make func() benchCache
		}{"sysdesign-" + p.String(), func() benchCache {
			m, err := cache.NewMemory(benchSize, cache.MemoryOptions[string, int]{Policy: p})
			if err != nil {
				b.Fatal(err)
			}
			return memBench{m}
		}})
	}
	impls = append(impls,
		struct {
			name string
			make func() benchCache
		}{"otter", func() benchCache {
			return otterBench{otter.Must(&otter.Options[string, int]{MaximumSize: benchSize})}
		}},
		struct {
			name string
			make func() benchCache
		}{"golang-lru", func() benchCache {
			c, err := lru.New[string, int](benchSize)
			if err != nil {
				b.Fatal(err)
			}
			return lruBench{c}
		}},
	)
	return impls
}

// benchKeys returns a Zipf(1.0) stream of keys over 2×benchSize keys, so a
// full cache serves most but not all reads.
func benchKeys(b *testing.B) []string {
	z, err := sim.NewZipf(sim.NewRand(1, 1), 1.0, 2*benchSize)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "key:" + strconv.FormatUint(z.Next(), 10)
	}
	return keys
}

// filled writes twice the capacity into c, so it is full and has evicted,
// then replays the key stream twice as cache-aside would (read, and write
// on a miss), so that each cache holds what its policy chose to keep from
// the measured distribution: without this the last-written keys, the
// coldest of the Zipf stream, would be resident and the run would time
// misses.
func filled(c benchCache, keys []string) benchCache {
	for i := range 2 * benchSize {
		c.set("key:"+strconv.Itoa(2*benchSize-1-i), i)
	}
	for range 2 {
		for i, k := range keys {
			if _, ok := c.get(k); !ok {
				c.set(k, i)
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

// benchmarkMixed runs reads and writes in parallel on a full cache; every
// writePct-th operation in 100 is a Set.
func benchmarkMixed(b *testing.B, writePct int) {
	keys := benchKeys(b)
	for _, impl := range benchImpls(b) {
		b.Run("algo="+impl.name, func(b *testing.B) {
			c := filled(impl.make(), keys)
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
						c.set(k, i)
					} else {
						c.get(k)
					}
					i++
				}
			})
		})
	}
}

// Parallel Get on a full cache.
func BenchmarkCache_Get(b *testing.B) { benchmarkMixed(b, 0) }

// Parallel 75% Get / 25% Set on a full cache.
func BenchmarkCache_Mixed75_25(b *testing.B) { benchmarkMixed(b, 25) }

// Single-goroutine Get, for allocation checks and the cost of one lookup.
func BenchmarkCache_GetSerial(b *testing.B) {
	keys := benchKeys(b)
	for _, impl := range benchImpls(b) {
		b.Run("algo="+impl.name, func(b *testing.B) {
			c := filled(impl.make(), keys)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.get(keys[i&(len(keys)-1)])
				i++
			}
		})
	}
}

// Every cache compared really caches and stays within its capacity: what
// was just written is read back, and a full stream of distinct keys leaves
// no more than the capacity resident.
func TestCachePeerHarness(t *testing.T) {
	for _, impl := range benchImpls(t) {
		c := impl.make()
		c.set("k", 7)
		if v, ok := c.get("k"); !ok || v != 7 {
			t.Fatalf("%s: get after set = %d, %v", impl.name, v, ok)
		}
		for i := range 4 * benchSize {
			c.set("key:"+strconv.Itoa(i), i)
		}
		resident := 0
		for i := range 4 * benchSize {
			if _, ok := c.get("key:" + strconv.Itoa(i)); ok {
				resident++
			}
		}
		if resident == 0 || resident > benchSize {
			t.Fatalf("%s: %d of %d keys resident with capacity %d", impl.name, resident, 4*benchSize, benchSize)
		}
	}
}

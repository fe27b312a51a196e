package bench

import (
	"strconv"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"

	"github.com/sysdesign-go/sysdesign/internal/cachebench"
)

type otterCache struct{ c *otter.Cache[string, int] }

func (c otterCache) Get(k string) (int, bool) { return c.c.GetIfPresent(k) }
func (c otterCache) Set(k string, v int)      { c.c.Set(k, v) }

type lruCache struct{ c *lru.Cache[string, int] }

func (c lruCache) Get(k string) (int, bool) { return c.c.Get(k) }
func (c lruCache) Set(k string, v int)      { c.c.Add(k, v) }

// cacheImpls lists every cache the benchmarks compare: cache.Memory under
// each policy beside otter v2 (W-TinyLFU) and golang-lru v2 (LRU).
func cacheImpls() []cachebench.Impl {
	return append(cachebench.Policies(),
		cachebench.Impl{Name: "otter", New: func(_ testing.TB, capacity int) cachebench.Cache {
			return otterCache{otter.Must(&otter.Options[string, int]{MaximumSize: capacity})}
		}},
		cachebench.Impl{Name: "golang-lru", New: func(tb testing.TB, capacity int) cachebench.Cache {
			c, err := lru.New[string, int](capacity)
			if err != nil {
				tb.Fatal(err)
			}
			return lruCache{c}
		}},
	)
}

// Parallel Get on a full cache.
func BenchmarkCache_Get(b *testing.B) { cachebench.Mixed(b, cacheImpls(), 0) }

// Parallel 75% Get / 25% Set on a full cache.
func BenchmarkCache_Mixed75_25(b *testing.B) { cachebench.Mixed(b, cacheImpls(), 25) }

// 75% Get / 25% Set on one goroutine: the cost of one operation.
func BenchmarkCache_Mixed75_25Serial(b *testing.B) { cachebench.MixedSerial(b, cacheImpls(), 25) }

// Single-goroutine Get, for allocation checks and the cost of one lookup.
func BenchmarkCache_GetSerial(b *testing.B) { cachebench.GetSerial(b, cacheImpls()) }

// Parallel inserts of new keys into a full cache: an entry and an
// eviction per operation.
func BenchmarkCache_Insert(b *testing.B) { cachebench.Insert(b, cacheImpls()) }

// Memory held per entry and the share of the capacity held when full, at
// 10k and 1M entries.
func BenchmarkCache_Fill(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		cachebench.Fill(b, cacheImpls(), n)
	}
}

// Every cache compared really caches and stays within its capacity: what
// was just written is read back, and a full stream of distinct keys leaves
// no more than the capacity resident.
func TestCachePeerHarness(t *testing.T) {
	for _, impl := range cacheImpls() {
		c := impl.New(t, cachebench.Size)
		c.Set("k", 7)
		if v, ok := c.Get("k"); !ok || v != 7 {
			t.Fatalf("%s: get after set = %d, %v", impl.Name, v, ok)
		}
		for i := range 4 * cachebench.Size {
			c.Set("key:"+strconv.Itoa(i), i)
		}
		resident := 0
		for i := range 4 * cachebench.Size {
			if _, ok := c.Get("key:" + strconv.Itoa(i)); ok {
				resident++
			}
		}
		if resident == 0 || resident > cachebench.Size {
			t.Fatalf("%s: %d of %d keys resident with capacity %d", impl.Name, resident, 4*cachebench.Size, cachebench.Size)
		}
	}
}

// BenchmarkCache_FillTTL is BenchmarkCache_Fill at 1M entries with a TTL on
// every entry: cache.Memory under each policy with a DefaultTTL beside
// otter v2 with ExpiryWriting (golang-lru has no per-entry TTL).
func BenchmarkCache_FillTTL(b *testing.B) {
	impls := append(cachebench.PoliciesTTL(time.Hour), cachebench.Impl{Name: "otter", New: func(_ testing.TB, capacity int) cachebench.Cache {
		return otterCache{otter.Must(&otter.Options[string, int]{MaximumSize: capacity,
			ExpiryCalculator: otter.ExpiryWriting[string, int](time.Hour)})}
	}})
	cachebench.Fill(b, impls, 1_000_000)
}

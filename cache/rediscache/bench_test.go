package rediscache

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// Cache-aside reads over [MultiLevel] with Redis behind a proxy that is
// healthy, cut (connections reset at once) or blackholed (connections
// held, bytes dropped: every L2 call waits out its timeout). The L1 holds
// a tenth of the keys, so most reads miss it and ask L2. The reads/s
// metric is the figure to compare across modes.
func BenchmarkMultiLevel_RedisDown(b *testing.B) {
	db := redistest.New(b)
	for _, mode := range []string{"healthy", "cut", "blackhole"} {
		b.Run("redis="+mode, func(b *testing.B) {
			p, client := proxiedClient(b, db)
			l1, err := cache.NewMemory(1000, cache.MemoryOptions[string, int]{})
			if err != nil {
				b.Fatal(err)
			}
			l2, err := New[int](client, Options{Prefix: db.Prefix, Timeout: 100 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			m, err := NewMultiLevel(b.Context(), l1, l2, MultiLevelOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			a, err := cache.NewAside[string, int](m, cache.AsideOptions{TTL: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			load := cache.LoaderFunc[string, int](func(_ context.Context, k string) (int, error) { return len(k), nil })
			keys := make([]string, 10_000)
			for i := range keys {
				keys[i] = "k" + strconv.Itoa(i)
			}
			switch mode {
			case "cut":
				p.Cut()
			case "blackhole":
				p.Blackhole()
			}
			var next atomic.Uint64
			b.SetParallelism(2)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := keys[next.Add(7919)%uint64(len(keys))]
					if _, err := a.Get(b.Context(), k, load); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
		})
	}
}

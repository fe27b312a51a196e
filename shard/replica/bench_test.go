package replica

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// benchmarkCoordinator times Put or Get at each level on an in-process
// cluster of nodes (no network delay).
func benchmarkCoordinator(b *testing.B, write bool) {
	for _, n := range []int{3, 5} {
		for _, lvl := range []Level{One, Quorum, All} {
			b.Run(fmt.Sprintf("N=%d/level=%v", n, lvl), func(b *testing.B) {
				tc := newTestCluster(b, n+2, n)
				benchmarkOps(b, tc.coordinator(b, Config{N: n}), 1024, write, Options{Level: lvl})
			})
		}
	}
}

func BenchmarkCoordinator_Put(b *testing.B) { benchmarkCoordinator(b, true) }
func BenchmarkCoordinator_Get(b *testing.B) { benchmarkCoordinator(b, false) }

// BenchmarkCoordinator_HTTP times writes and reads on three nodes behind
// loopback HTTP servers: the cost of the wire beside the in-process
// figures.
func BenchmarkCoordinator_HTTP(b *testing.B) {
	for _, op := range []string{"put", "get"} {
		for _, lvl := range []Level{One, Quorum, All} {
			b.Run(fmt.Sprintf("op=%s/level=%v", op, lvl), func(b *testing.B) {
				hc := newHTTPCluster(b, 3)
				c, err := NewCoordinator(Config{Placement: hc.ring, Transport: hc.transport})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close(context.Background())
				benchmarkOps(b, c, 64, op == "put", Options{Level: lvl})
			})
		}
	}
}

// benchmarkOps writes keys once, then times Put (each carrying the last
// write's context, so a key keeps one version) or Get over them in turn,
// and reports p50 and p99 besides the mean.
func benchmarkOps(b *testing.B, c *Coordinator, nkeys int, write bool, opts Options) {
	ctx := context.Background()
	keys := make([]string, nkeys)
	contexts := make([]Context, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key%d", i)
		res, err := c.Put(ctx, keys[i], []byte("value"), Context{}, Options{Level: All})
		if err != nil {
			b.Fatal(err)
		}
		contexts[i] = res.Context
	}
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		k := i % nkeys
		i++
		start := time.Now()
		var err error
		if write {
			var res *Result
			if res, err = c.Put(ctx, keys[k], []byte("value"), contexts[k], opts); err == nil {
				contexts[k] = res.Context
			}
		} else {
			_, err = c.Get(ctx, keys[k], opts)
		}
		if err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	}
}

// BenchmarkSession is a read-modify-write at QUORUM with and without a
// session: the token's cost.
func BenchmarkSession(b *testing.B) {
	for _, withSession := range []bool{false, true} {
		b.Run(fmt.Sprintf("session=%v", withSession), func(b *testing.B) {
			tc := newTestCluster(b, 5, 3)
			c := tc.coordinator(b, Config{})
			ctx := context.Background()
			var s *Session
			if withSession {
				s = new(Session)
			}
			keys := make([]string, 64)
			for i := range keys {
				keys[i] = fmt.Sprintf("key%d", i)
				if _, err := c.Put(ctx, keys[i], []byte("v"), Context{}, Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				key := keys[i%len(keys)]
				i++
				got, err := c.Get(ctx, key, Options{Session: s})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Put(ctx, key, []byte("v"), got.Context, Options{Session: s}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if withSession {
				b.ReportMetric(float64(len(c.SessionToken(s))), "token-bytes")
			}
			_ = c.Close(ctx)
		})
	}
}

// BenchmarkNode_AntiEntropy repairs 1 % of the keys two replicas share
// and reports the payload exchanged beside a full transfer of every
// record.
func BenchmarkNode_AntiEntropy(b *testing.B) {
	for _, keys := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			tc := newTestCluster(b, 3, 3)
			full := 0
			for i := range keys {
				key := fmt.Sprintf("key%07d", i)
				r := Record{Siblings: []Sibling{{Value: []byte("a 32-byte value, like a small row"), Dot: Dot{"n1", 1}}}, Clock: VersionVector{"n1": 1}}
				for _, n := range []string{"n1", "n2"} {
					if err := tc.stores[n].Put(key, r); err != nil {
						b.Fatal(err)
					}
				}
				full += len(key) + recordBytes(r)
			}
			ctx := context.Background()
			var bytes, diff int
			for b.Loop() {
				b.StopTimer()
				for i := 0; i < keys; i += 100 {
					_ = tc.stores["n2"].Delete(fmt.Sprintf("key%07d", i))
				}
				b.StartTimer()
				st, err := tc.nodes["n1"].AntiEntropy(ctx, "n2")
				if err != nil {
					b.Fatal(err)
				}
				bytes, diff = st.Bytes, st.Keys
			}
			if diff != keys/100 {
				b.Fatalf("repaired %d keys, want %d", diff, keys/100)
			}
			b.ReportMetric(float64(bytes), "bytes/op")
			b.ReportMetric(float64(full), "full-transfer-bytes")
		})
	}
}

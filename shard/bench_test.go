package shard

import (
	"context"
	"fmt"
	"strconv"
	"testing"
)

// The peers (groupcache's consistenthash, dgryski/go-jump) are measured
// beside Ring and Jump in the bench module (bench/shard_test.go), which
// keeps them out of this module.

// locator is what the lookup benchmark measures.
type locator interface{ Locate(key string) int }

func benchLocators(b *testing.B, n int) []struct {
	name string
	l    locator
} {
	b.Helper()
	nodes := makeNodes(n)
	names := make([]string, n)
	for i, nd := range nodes {
		names[i] = nd.Name
	}
	must := func(p Placement, err error) locator {
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	splits := make([]string, n-1)
	for i := range splits {
		splits[i] = fmt.Sprintf("key:%08d", (i+1)*1_000_000/n)
	}
	entries := map[string]string{}
	for i := range 1000 {
		entries[fmt.Sprintf("key:%08d", i)] = names[i%n]
	}
	return []struct {
		name string
		l    locator
	}{
		{"modulo", must(NewModulo(nodes))},
		{"ring", must(NewRing(nodes, RingOptions{}))},
		{"bounded", must(NewBounded(nodes, BoundedOptions{}))},
		{"jump", must(NewJump(nodes))},
		{"rendezvous", must(NewRendezvous(nodes))},
		{"maglev", must(NewMaglev(nodes, MaglevOptions{}))},
		{"range", must(NewRangeSplits(nodes, splits))},
		{"directory", must(NewDirectory(nodes, entries, DirectoryOptions{}))},
	}
}

var sink int

// benchKeys returns 1,024 keys of the form key:00123456.
func benchKeys() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i*7919%1_000_000 + 10_000_000)[1:]
	}
	return keys
}

// BenchmarkLookup measures one key → shard lookup per algorithm at 10, 100
// and 1,000 shards.
func BenchmarkLookup(b *testing.B) {
	keys := benchKeys()
	for _, n := range []int{10, 100, 1000} {
		for _, c := range benchLocators(b, n) {
			b.Run(fmt.Sprintf("algo=%s/shards=%d", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					sink += c.l.Locate(keys[i&1023])
					i++
				}
			})
		}
	}
}

// BenchmarkLookup_Parallel is the same lookup from all cores at once: the
// placements are immutable, so it should scale without contention.
func BenchmarkLookup_Parallel(b *testing.B) {
	keys := benchKeys()
	for _, c := range benchLocators(b, 100) {
		b.Run("algo="+c.name+"/shards=100", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i, s := 0, 0
				for pb.Next() {
					s += c.l.Locate(keys[i&1023])
					i++
				}
				_ = s
			})
		})
	}
}

// BenchmarkRouter_Get measures the routing overhead on top of an in-memory
// store, and a scatter-gather scan over 16 shards.
func BenchmarkRouter_Get(b *testing.B) {
	ring, err := NewRing(makeNodes(16), RingOptions{})
	if err != nil {
		b.Fatal(err)
	}
	stores := map[string]Store{}
	for _, n := range ring.Nodes() {
		stores[n.Name] = &MemStore{}
	}
	r, err := NewRouter(ring, stores, RouterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range 1000 {
		if err := r.Put(ctx, fmt.Sprintf("k%04d", i), []byte("v")); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("op=get", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Get(ctx, "k0042"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("op=scan-limit-10", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Scan(ctx, "k0500", "", 10); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBoundedLoads_Acquire measures an acquire/release pair from all
// cores on 100 shards (one mutex: this is the contended path).
func BenchmarkBoundedLoads_Acquire(b *testing.B) {
	bl, err := NewBoundedLoads(makeNodes(100), BoundedLoadsOptions{LoadFactor: 1.25})
	if err != nil {
		b.Fatal(err)
	}
	keys := benchKeys()
	b.Run("algo=bounded-loads/shards=100", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				s := bl.Acquire(keys[i%10])
				_ = bl.Release(s)
				i++
			}
		})
	})
}

package bench

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"
	gojump "github.com/dgryski/go-jump"
	"github.com/golang/groupcache/consistenthash"

	"github.com/sysdesign-go/sysdesign/shard"
)

// The peers of package shard: github.com/golang/groupcache's
// consistenthash (a ring of virtual nodes) and github.com/dgryski/go-jump,
// the jump consistent hash paper's reference loop.

// locator is what the lookup benchmark measures. The peers are adapted to
// it: groupcache's ring returns its shard name, go-jump a bucket of the
// same xxHash of the key that shard.Jump hashes.
type locator interface{ Locate(key string) int }

type groupcacheRing struct{ m *consistenthash.Map }

func (g groupcacheRing) Locate(key string) int { return len(g.m.Get(key)) }

type goJump struct{ n int }

func (g goJump) Locate(key string) int { return int(gojump.Hash(xxhash.Sum64String(key), g.n)) }

func shardNodes(n int) []shard.Node {
	nodes := make([]shard.Node, n)
	for i := range nodes {
		nodes[i] = shard.Node{Name: fmt.Sprintf("shard-%03d", i), Weight: 1}
	}
	return nodes
}

// locators are package shard's ring and jump placements over n shards,
// each beside its peer: groupcache's ring at the same virtual nodes per
// shard, and go-jump over the same key hash.
func locators(b *testing.B, n int) []struct {
	name string
	l    locator
} {
	b.Helper()
	nodes := shardNodes(n)
	names := make([]string, n)
	for i, nd := range nodes {
		names[i] = nd.Name
	}
	gc := consistenthash.New(shard.DefaultVirtualNodes, nil)
	gc.Add(names...)
	ring, err := shard.NewRing(nodes, shard.RingOptions{})
	if err != nil {
		b.Fatal(err)
	}
	jump, err := shard.NewJump(nodes)
	if err != nil {
		b.Fatal(err)
	}
	return []struct {
		name string
		l    locator
	}{
		{"ring", ring},
		{"groupcache-consistenthash", groupcacheRing{gc}},
		{"jump", jump},
		{"dgryski-go-jump", goJump{n}},
	}
}

var sink int

// shardKeys returns 1,024 keys of the form key:00123456.
func shardKeys() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i*7919%1_000_000 + 10_000_000)[1:]
	}
	return keys
}

// The go-jump harness computes what shard.Jump does: the same shard for
// every key, so the lookups compared are the same work.
func TestGoJumpPeerHarness(t *testing.T) {
	keys := shardKeys()
	for _, n := range []int{1, 7, 10, 100, 1000} {
		j, err := shard.NewJump(shardNodes(n))
		if err != nil {
			t.Fatal(err)
		}
		peer := goJump{n}
		for _, key := range keys {
			if got, want := j.Locate(key), peer.Locate(key); got != want {
				t.Fatalf("%d shards, key %q: shard.Jump %d, go-jump %d", n, key, got, want)
			}
		}
	}
}

// The groupcache harness really places: its ring spreads keys over every
// shard.
func TestGroupcachePeerHarness(t *testing.T) {
	names := []string{"shard-000", "shard-001", "shard-002"}
	gc := consistenthash.New(shard.DefaultVirtualNodes, nil)
	gc.Add(names...)
	seen := map[string]int{}
	for _, key := range shardKeys() {
		seen[gc.Get(key)]++
	}
	if len(seen) != len(names) {
		t.Fatalf("groupcache placed keys on %v", seen)
	}
}

// BenchmarkShard_Lookup measures one key → shard lookup at 10, 100 and
// 1,000 shards, on one goroutine and on all of them: package shard's Ring
// beside groupcache/consistenthash at the same 160 virtual nodes per shard,
// and its Jump beside github.com/dgryski/go-jump over the same key hash.
func BenchmarkShard_Lookup(b *testing.B) {
	keys := shardKeys()
	for _, n := range []int{10, 100, 1000} {
		for _, c := range locators(b, n) {
			b.Run(fmt.Sprintf("algo=%s/shards=%d", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					sink += c.l.Locate(keys[i&1023])
					i++
				}
			})
			b.Run(fmt.Sprintf("algo=%s/shards=%d/parallel", c.name, n), func(b *testing.B) {
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
}

// mix64 spreads a counter over 64 bits (splitmix64's finaliser), for key
// hashes.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// BenchmarkShard_JumpHash is the jump loop alone, from a 64-bit key hash:
// shard.JumpHash beside go-jump's reference loop, a walk of about ln(n)+1
// dependent steps.
func BenchmarkShard_JumpHash(b *testing.B) {
	hashes := make([]uint64, 1024)
	for i := range hashes {
		hashes[i] = mix64(uint64(i))
	}
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("algo=jump/shards=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sink += int(shard.JumpHash(hashes[i&1023], int64(n)))
				i++
			}
		})
		b.Run(fmt.Sprintf("algo=dgryski-go-jump/shards=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sink += int(gojump.Hash(hashes[i&1023], n))
				i++
			}
		})
	}
}

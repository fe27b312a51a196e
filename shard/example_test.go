package shard_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/sysdesign-go/sysdesign/shard"
)

// Guide: "Database Design → Database Sharding" (hash-based).
// A consistent-hash ring: the returned index is a position in the slice
// given to NewRing, and the same names in another order give the same
// placement.
func ExampleNewRing() {
	nodes := []shard.Node{{Name: "db-a", Weight: 1}, {Name: "db-b", Weight: 1}, {Name: "db-c", Weight: 2}}
	ring, err := shard.NewRing(nodes, shard.RingOptions{})
	if err != nil {
		panic(err)
	}
	reordered := []shard.Node{nodes[2], nodes[0], nodes[1]}
	ring2, _ := shard.NewRing(reordered, shard.RingOptions{})
	for _, key := range []string{"user:1", "user:2", "user:3"} {
		a, b := nodes[ring.Locate(key)].Name, reordered[ring2.Locate(key)].Name
		fmt.Println(key, a, a == b)
	}
	// Output:
	// user:1 db-a true
	// user:2 db-c true
	// user:3 db-c true
}

// Guide: "Database Design → Database Sharding" (hash-based).
// Bad shard sets are errors that callers can test, never panics.
func ExampleNewMaglev_errors() {
	_, err := shard.NewMaglev(shard.NodesNamed("a", "a"), shard.MaglevOptions{})
	fmt.Println(errors.Is(err, shard.ErrDuplicateShard), errors.Is(err, shard.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true true
	// shard: invalid configuration: duplicate shard name: "a" at positions 0 and 1
}

// Guide: "Database Design → Database Sharding" (data rebalancing).
// Planning a change: how many of 10,000 keys move when a fifth shard joins,
// with modulo hashing and with jump consistent hashing.
func ExamplePlanMoves() {
	four := shard.NodesNamed("s0", "s1", "s2", "s3")
	five := append(slices.Clone(four), shard.Node{Name: "s4", Weight: 1})
	keys := func(yield func(string) bool) {
		for i := range 10_000 {
			if !yield("order:" + strconv.Itoa(i)) {
				return
			}
		}
	}
	m4, _ := shard.NewModulo(four)
	m5, _ := shard.NewModulo(five)
	j4, _ := shard.NewJump(four)
	j5, _ := shard.NewJump(five)
	mod, _ := shard.PlanMoves(m4, m5, keys, shard.PlanOptions{CountOnly: true})
	jump, _ := shard.PlanMoves(j4, j5, keys, shard.PlanOptions{CountOnly: true})
	fmt.Printf("modulo moves %.0f%%, jump moves %.0f%% (ideal 20%%)\n", 100*mod.Fraction(), 100*jump.Fraction())
	for _, f := range jump.Flows[:2] {
		fmt.Printf("%s → %s\n", f.From, f.To)
	}
	// Output:
	// modulo moves 79%, jump moves 21% (ideal 20%)
	// s0 → s4
	// s1 → s4
}

// Guide: "Database Design → Database Sharding" (range-based, data
// rebalancing).
// Range sharding: split a hot range and list exactly which keys move.
func ExampleRange_Split() {
	nodes := shard.NodesNamed("old", "new", "spare")
	r, _ := shard.NewRangeSplits(nodes[:2], []string{"2026-01"})
	r, _ = shard.NewRange(nodes, r.Spans())
	split, _ := r.Split("2026-06", "spare")
	for _, s := range split.Spans() {
		fmt.Printf("[%q, %q) → %s\n", s.Start, s.End, s.Shard)
	}
	for _, m := range shard.PlanRanges(r, split) {
		fmt.Println("move", m)
	}
	_, err := r.Lookup("")
	fmt.Println(err)
	// Output:
	// ["", "2026-01") → old
	// ["2026-01", "2026-06") → new
	// ["2026-06", "") → spare
	// move ["2026-06", ∞) new → spare
	// <nil>
}

// Guide: "Database Design → Database Sharding" (cross-shard queries).
// A router over four in-memory shards: single-key operations go to one
// shard, an ordered scan is a scatter-gather, and a failed shard is named
// instead of silently missing.
func ExampleRouter() {
	ctx := context.Background()
	nodes := shard.NodesNamed("s0", "s1", "s2", "s3")
	ring, _ := shard.NewRing(nodes, shard.RingOptions{})
	stores := map[string]shard.Store{}
	for _, n := range nodes {
		stores[n.Name] = &shard.MemStore{}
	}
	r, _ := shard.NewRouter(ring, stores, shard.RouterOptions{})
	for i := range 8 {
		_ = r.Put(ctx, fmt.Sprintf("item:%d", i), []byte(strconv.Itoa(i*i)))
	}
	v, _ := r.Get(ctx, "item:3")
	fmt.Println("item:3 =", string(v))

	first, _ := r.Scan(ctx, "item:2", "", 3)
	fmt.Println(first[0].Key, first[1].Key, first[2].Key)

	owner, _ := r.ShardFor("item:5")
	stores[owner].(*shard.MemStore).SetFault(errors.New("disk full"))
	all, err := r.Scan(ctx, "", "", 0)
	var pe *shard.PartialError
	if errors.As(err, &pe) {
		fmt.Println(len(all) < 8, len(pe.Failed), "shard failed:", pe.Failed[owner])
	}
	// Output:
	// item:3 = 9
	// item:2 item:3 item:4
	// true 1 shard failed: disk full
}

// Guide: "Database Design → Database Sharding" (rebalancing strategy:
// online).
// An online migration from three to four shards: copy, verify, switch.
func ExampleMigration() {
	ctx := context.Background()
	nodes := shard.NodesNamed("s0", "s1", "s2", "s3")
	stores := map[string]shard.Store{}
	for _, n := range nodes {
		stores[n.Name] = &shard.MemStore{}
	}
	before, _ := shard.NewJump(nodes[:3])
	after, _ := shard.NewJump(nodes)
	r, _ := shard.NewRouter(before, stores, shard.RouterOptions{})
	for i := range 1000 {
		_ = r.Put(ctx, fmt.Sprintf("k%04d", i), []byte("v"))
	}

	m, _ := shard.NewMigration(before, after, stores, shard.MigrationOptions{BatchSize: 100})
	_ = m.Put(ctx, "k0001", []byte("written during the move"))
	if err := m.Copy(ctx); err != nil {
		panic(err)
	}
	report, _ := m.Verify(ctx)
	fmt.Println("missing after copy:", report.Missing)
	fmt.Println(m.Switch(), m.Phase())
	deleted, _ := m.Cleanup(ctx)
	// k0001 moves, but its new shard already had the newer value, so it
	// was not copied: one more old copy deleted than keys copied.
	fmt.Println("copied:", m.Stats().Copied, "old copies deleted:", deleted)
	r2, _ := m.Router(shard.RouterOptions{})
	v, _ := r2.Get(ctx, "k0001")
	n, _ := r2.Count(ctx, "", "")
	fmt.Println(string(v), n)
	// Output:
	// missing after copy: 0
	// <nil> switched
	// copied: 265 old copies deleted: 266
	// written during the move 1000
}

// Guide: "Database Design → Database Sharding" (hash-based, data
// rebalancing).
// Jump hashing numbers its shards: grow by appending, and only keys that
// move to the new shard move at all.
func ExampleJump() {
	shards := shard.NodesNamed("p0", "p1", "p2")
	before, _ := shard.NewJump(shards)
	after, _ := shard.NewJump(append(shards, shard.Node{Name: "p3", Weight: 1}))
	movedElsewhere := 0
	for i := range 10_000 {
		k := "event:" + strconv.Itoa(i)
		if a, b := before.Locate(k), after.Locate(k); a != b && b != 3 {
			movedElsewhere++
		}
	}
	fmt.Println("keys that moved anywhere but the new shard:", movedElsewhere)
	// Output:
	// keys that moved anywhere but the new shard: 0
}

// Guide: "Database Design → Database Sharding" (hash-based: even
// distribution).
// Bounded loads on live load: a hot key fills its shard up to the bound,
// then spills to the next shard on the ring instead of overloading it.
func ExampleBoundedLoads() {
	nodes := shard.NodesNamed("cache-a", "cache-b", "cache-c", "cache-d")
	b, _ := shard.NewBoundedLoads(nodes, shard.BoundedLoadsOptions{LoadFactor: 1.25})
	for range 100 {
		b.Acquire("video:viral") // 100 requests in flight for one key
	}
	st := b.Stats()
	fmt.Println("in flight per shard:", st.Load, "overflowed:", st.Overflowed) // none above ⌈1.25 × 100/4⌉ = 32
	// Output:
	// in flight per shard: [31 31 6 32] overflowed: 68
}

// Guide: "Database Design → Database Sharding" (shard key selection).
// Shard-key selection: a hash tag keeps one customer's rows on one shard.
func ExampleHashTag() {
	nodes := shard.NodesNamed("s0", "s1", "s2", "s3")
	ring, _ := shard.NewRing(nodes, shard.RingOptions{})
	stores := map[string]shard.Store{}
	for _, n := range nodes {
		stores[n.Name] = &shard.MemStore{}
	}
	r, _ := shard.NewRouter(ring, stores, shard.RouterOptions{ShardKey: shard.HashTag})
	a, _ := r.ShardFor("{customer:7}:profile")
	b, _ := r.ShardFor("{customer:7}:orders:2026-11-29")
	fmt.Println(shard.HashTag("{customer:7}:profile"), a == b)
	// Output:
	// customer:7 true
}

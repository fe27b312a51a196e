//go:build !race

package ratelimit

import (
	"context"
	"testing"
)

// A decision allocates nothing, on a key of a Keyed of every algorithm
// (once the key exists; the sliding log makes its ring at a key's first
// event) as on a single limiter. The race detector allocates, hence the
// build tag.
func TestDecisionsAllocateNothing(t *testing.T) {
	ctx := context.Background()
	for _, alg := range Algorithms {
		k, err := NewKeyed(alg, KeyedOptions{}, PerSecond(1_000_000))
		if err != nil {
			t.Fatal(err)
		}
		multi, err := NewKeyed(alg, KeyedOptions{}, PerSecond(1_000_000), PerMinute(100_000_000))
		if err != nil {
			t.Fatal(err)
		}
		k.Allow("k")
		multi.Allow("k")
		if n := testing.AllocsPerRun(100, func() { _, _ = k.Decide(ctx, "k", 1) }); n != 0 {
			t.Errorf("Keyed %v: %v allocations per decision", alg, n)
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = multi.Decide(ctx, "k", 1) }); n != 0 {
			t.Errorf("Keyed %v, two limits: %v allocations per decision", alg, n)
		}
		lim, err := New(alg, PerSecond(1_000_000))
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { lim.Allow(); _, _ = lim.AllowN(t0, 1) }); n != 0 {
			t.Errorf("%v: %v allocations per decision", alg, n)
		}
	}
}

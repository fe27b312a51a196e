//go:build !race

package ratelimit

import (
	"context"
	"testing"
)

// A decision allocates nothing, on a key of a Keyed of every algorithm
// (once the key exists) as on a single limiter. The race detector
// allocates, hence the build tag.
//
// A sliding log's ring doubles as the events in its window grow, so each
// path is first warmed with 150 calls: the ring then has room for 256
// timestamps (512 where a call logs two), past the 101 calls
// AllocsPerRun makes, all within the window of a second.
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
		lim, err := New(alg, PerSecond(1_000_000))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			f    func()
		}{
			{"Keyed", func() { _, _ = k.Decide(ctx, "k", 1) }},
			{"Keyed, two limits,", func() { _, _ = multi.Decide(ctx, "k", 1) }},
			{"Limiter", func() { lim.Allow(); _, _ = lim.AllowN(t0, 1) }},
		} {
			for range 150 {
				c.f()
			}
			if n := testing.AllocsPerRun(100, c.f); n != 0 {
				t.Errorf("%s %v: %v allocations per decision", c.name, alg, n)
			}
		}
	}
}

package lb

import (
	"context"
	"fmt"
	"testing"

	"github.com/go-kratos/kratos/v2/selector"
	"github.com/go-kratos/kratos/v2/selector/p2c"
)

// The peer of PeakEWMA in the benchmarks: go-kratos's p2c selector, power
// of two choices over its EWMA nodes (a time-decayed latency average times
// the requests in flight, timed by the selector itself from pick to done),
// the Go counterpart of Finagle's peak EWMA that the kratos and go-zero
// frameworks ship.

// kratosSelector builds kratos's p2c selector over n backends.
func kratosSelector(n int) selector.Selector {
	sel := p2c.New()
	nodes := make([]selector.Node, n)
	for i := range nodes {
		nodes[i] = selector.NewNode("http", fmt.Sprintf("10.0.0.%d:80", i+1), nil)
	}
	sel.Apply(nodes)
	return sel
}

// The peer harness really balances: the selector spreads over every
// backend.
func TestKratosPeerHarness(t *testing.T) {
	sel := kratosSelector(3)
	seen := map[string]int{}
	for range 300 {
		n, done, err := sel.Select(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		seen[n.Address()]++
		done(context.Background(), selector.DoneInfo{})
	}
	if len(seen) != 3 {
		t.Fatalf("kratos p2c picked %v", seen)
	}
}

// BenchmarkPeer_PickEWMA is kratos's p2c selector's pick and done, beside
// BenchmarkBalancer_PickSelfTimed (the same work: the balancer times the
// request) and BenchmarkBalancer_Pick's algo=peak-ewma (the caller reports
// the latency).
func BenchmarkPeer_PickEWMA(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{3, 10, 100} {
		b.Run(fmt.Sprintf("algo=kratos-p2c-ewma/backends=%d", n), func(b *testing.B) {
			sel := kratosSelector(n)
			b.ReportAllocs()
			for b.Loop() {
				_, done, err := sel.Select(ctx)
				if err != nil {
					b.Fatal(err)
				}
				done(ctx, selector.DoneInfo{})
			}
		})
		b.Run(fmt.Sprintf("algo=kratos-p2c-ewma/backends=%d/parallel", n), func(b *testing.B) {
			sel := kratosSelector(n)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, err := sel.Select(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					done(ctx, selector.DoneInfo{})
				}
			})
		})
	}
}

package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/shard"
)

const shardSection = "Database Design → Database Sharding"

// shardNodes returns n unweighted shards named s000, s001, ...
func shardNodes(n int) []shard.Node {
	nodes := make([]shard.Node, n)
	for i := range nodes {
		nodes[i] = shard.Node{Name: fmt.Sprintf("s%03d", i), Weight: 1}
	}
	return nodes
}

// shardKeys returns n distinct user keys.
func shardKeys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = "user:" + strconv.Itoa(i)
	}
	return ks
}

// shardAlgo builds one placement for the movement and balance experiments.
type shardAlgo struct {
	name  string
	build func(nodes []shard.Node) (shard.Placement, error)
}

var shardAlgos = []shardAlgo{
	{"modulo", func(n []shard.Node) (shard.Placement, error) { return shard.NewModulo(n) }},
	{"ring, 160 vnodes", func(n []shard.Node) (shard.Placement, error) {
		return shard.NewRing(n, shard.RingOptions{VirtualNodes: 160})
	}},
	{"ring, 1000 vnodes", func(n []shard.Node) (shard.Placement, error) {
		return shard.NewRing(n, shard.RingOptions{VirtualNodes: 1000})
	}},
	{"bounded c=1.25", func(n []shard.Node) (shard.Placement, error) {
		return shard.NewBounded(n, shard.BoundedOptions{LoadFactor: 1.25})
	}},
	{"bounded c=1.05", func(n []shard.Node) (shard.Placement, error) {
		return shard.NewBounded(n, shard.BoundedOptions{LoadFactor: 1.05})
	}},
	{"jump", func(n []shard.Node) (shard.Placement, error) { return shard.NewJump(n) }},
	{"rendezvous", func(n []shard.Node) (shard.Placement, error) { return shard.NewRendezvous(n) }},
	{"maglev", func(n []shard.Node) (shard.Placement, error) { return shard.NewMaglev(n, shard.MaglevOptions{}) }},
}

// balance returns max/mean and the coefficient of variation of keys per
// shard.
func balance(p shard.Placement, keys []string) (maxOverMean, cv float64) {
	counts := make([]float64, len(p.Nodes()))
	for _, k := range keys {
		counts[p.Locate(k)]++
	}
	mean := float64(len(keys)) / float64(len(counts))
	var ss float64
	for _, c := range counts {
		ss += (c - mean) * (c - mean)
	}
	return slices.Max(counts) / mean, math.Sqrt(ss/float64(len(counts))) / mean
}

// waitMeter sums the waits asked for and the waits slept: the difference
// is how late the runtime's timers wake a sleeping call on this machine.
type waitMeter struct{ waits, asked, slept atomic.Int64 }

// late returns the mean delay past the asked wait.
func (m *waitMeter) late() time.Duration {
	n := m.waits.Load()
	if n == 0 {
		return 0
	}
	return time.Duration((m.slept.Load() - m.asked.Load()) / n)
}

// shardWait blocks for d, or until ctx ends: the real wait of a network
// call, which a deadline cuts short. Completed waits are metered.
func shardWait(ctx context.Context, d time.Duration, m *waitMeter) error {
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		m.waits.Add(1)
		m.asked.Add(int64(d))
		m.slept.Add(int64(time.Since(start)))
		return nil
	}
}

// lockedDist makes a sim.Dist safe for the concurrent callers of a store.
type lockedDist struct {
	mu sync.Mutex
	d  sim.Dist // guarded by mu
}

func (l *lockedDist) sample() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.d.Sample()
}

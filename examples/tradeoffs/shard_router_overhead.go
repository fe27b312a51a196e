package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/shard"
)

var shardRouterOverheadExperiment = lab.Experiment{
	Name:      "shard-router-overhead",
	Group:     "shard",
	Title:     "the router's own cost: single-key get versus scatter-gather over 4, 16 and 64 in-memory shards",
	Section:   shardSection,
	Guide:     "Cross-shard Queries: Distributed joins, aggregation",
	WallClock: true,
	Run:       runShardRouterOverhead,
}

// overheadRow is the measured cost of the router's operations at one
// shard count, with stores that answer instantly.
type overheadRow struct {
	shards                 int
	get, scan, topN, count time.Duration // mean per operation
}

// shardRouterOverhead times the real Router over MemStores: what the
// fan-out itself costs (goroutines, merging), before any network.
func shardRouterOverhead(ctx context.Context, keys, reps int) ([]overheadRow, error) {
	var rows []overheadRow
	for _, n := range []int{4, 16, 64} {
		nodes := shardNodes(n)
		p, err := shard.NewJump(nodes)
		if err != nil {
			return nil, err
		}
		stores := map[string]shard.Store{}
		for _, nd := range nodes {
			stores[nd.Name] = &shard.MemStore{}
		}
		r, err := shard.NewRouter(p, stores, shard.RouterOptions{QueryTimeout: time.Second})
		if err != nil {
			return nil, err
		}
		for i := range keys {
			if err := r.Put(ctx, fmt.Sprintf("item:%06d", i), []byte(strconv.Itoa(i))); err != nil {
				return nil, err
			}
		}
		byValue := func(a, b shard.KV) int { return len(b.Value) - len(a.Value) }
		ops := []func(i int) error{
			func(i int) error { _, err := r.Get(ctx, fmt.Sprintf("item:%06d", i%keys)); return err },
			func(i int) error { _, err := r.Scan(ctx, fmt.Sprintf("item:%06d", i%keys), "", 10); return err },
			func(int) error { _, err := r.TopN(ctx, "", "", 10, byValue); return err },
			func(int) error { _, err := r.Count(ctx, "", ""); return err },
		}
		var means [4]time.Duration
		for o, op := range ops {
			start := time.Now()
			for i := range reps {
				if err := op(i); err != nil {
					return nil, err
				}
			}
			means[o] = time.Since(start) / time.Duration(reps)
		}
		rows = append(rows, overheadRow{n, means[0], means[1], means[2], means[3]})
	}
	return rows, nil
}

func runShardRouterOverhead(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	keys, reps := env.Scale(10_000, 1_000), env.Scale(500, 50)
	rows, err := shardRouterOverhead(ctx, keys, reps)
	if err != nil {
		return nil, err
	}
	res := &lab.Result{}
	t := lab.NewTable(fmt.Sprintf("Mean wall-clock time per operation, %d keys on in-memory shards, %d repetitions", keys, reps),
		"shards", "Get (one shard)", "Scan limit 10 (all shards)", "TopN 10 (full walk)", "Count (full walk)")
	for _, r := range rows {
		t.AddRow(r.shards, r.get, r.scan, r.topN, r.count)
	}
	res.Tables = append(res.Tables, t)
	first, last := rows[0], rows[len(rows)-1]
	res.Verdict, res.Reason = shardRouterOverheadVerdict(first, last)
	res.Notes = append(res.Notes,
		fmt.Sprintf("Measured on this machine with this library's Router (numbers vary between runs): a single-shard Get costs %v; an ordered Scan fans out to every shard and costs %v at %d shards and %v at %d: every cross-shard query pays the fan-out (one goroutine per shard, a deadline, a k-way merge) even when every shard answers instantly, and on a busy machine it also waits for a CPU per shard.",
			lab.Format(first.get), lab.Format(first.scan), first.shards, lab.Format(last.scan), last.shards),
		"Full-walk queries (TopN, Count) read every key of every shard, so their cost follows the data size, not the shard count; over a network each shard call adds a round trip and the slowest shard sets the latency (see shard-scatter).",
	)
	return res, nil
}

// shardRouterOverheadVerdict judges "cross-shard queries" by what the
// fan-out itself costs, with shards that answer instantly.
func shardRouterOverheadVerdict(first, last overheadRow) (lab.Verdict, string) {
	numbers := fmt.Sprintf("with shards that answer instantly a Scan over %d shards costs %v, a single-shard Get %v", last.shards, lab.Format(last.scan), lab.Format(first.get))
	return lab.Judge(last.scan > 2*first.get, "Even before any network a cross-shard query pays for its fan-out: "+numbers+".", lab.Nuance, "The fan-out itself costs little: "+numbers+".")
}

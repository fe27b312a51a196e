package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/shard/replica"
)

var replicaLWWExperiment = lab.Experiment{
	Name:      "replica-lww",
	Group:     "replica",
	Title:     "last-writer-wins against version vectors: lost updates under concurrent writers",
	Section:   "Distributed Systems → Consistency Models",
	Guide:     "Causal Consistency: Causally related writes appear in order ... Implementation: Vector clocks, dependency tracking",
	WallClock: true,
	Run:       runReplicaLWW,
}

// lwwRun counts what concurrent read-modify-writes of one set kept.
type lwwRun struct {
	lww            bool
	acked, kept    int
	maxSiblings    int
	resolvedMerges int // reads that returned siblings the client merged
}

// replicaLWWRun has writers add items to one shared set (a shopping cart)
// by read-modify-write at QUORUM. With version vectors a read returns
// concurrent versions as siblings and the client merges them (set union)
// before adding its item; with last-writer-wins the store keeps one
// version and drops the others.
func replicaLWWRun(ctx context.Context, env *lab.Env, lww bool) (lwwRun, error) {
	res := lwwRun{lww: lww}
	rc, err := newReplicaCluster(3)
	if err != nil {
		return res, err
	}
	defer rc.close()
	rc.net.SetLatency(expLatency(env.Rand(21), 500*time.Microsecond))
	const writers = 4
	adds := env.Scale(100, 25)
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs = make([]error, writers)
	)
	for w := range writers {
		c, err := rc.coordinator(fmt.Sprintf("writer-%d", w), replica.Config{N: 3, LastWriterWins: lww})
		if err != nil {
			return res, err
		}
		wg.Go(func() {
			for i := range adds {
				var items []string
				var cc replica.Context
				got, err := c.Get(ctx, "cart", replica.Options{})
				switch {
				case err == nil:
					cc = got.Context
					for _, v := range got.Values {
						items = append(items, strings.Split(string(v), ",")...)
					}
					if len(got.Values) > 1 {
						mu.Lock()
						res.resolvedMerges++
						res.maxSiblings = max(res.maxSiblings, len(got.Values))
						mu.Unlock()
					}
				case !errors.Is(err, replica.ErrNotFound):
					errs[w] = err
					return
				}
				slices.Sort(items)
				items = slices.Compact(items)
				items = append(items, fmt.Sprintf("w%d-%d", w, i))
				if _, err := c.Put(ctx, "cart", []byte(strings.Join(items, ",")), cc, replica.Options{}); err != nil {
					errs[w] = err
					return
				}
				mu.Lock()
				res.acked++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	final, err := rc.coord[0].Get(ctx, "cart", replica.Options{Level: replica.All})
	if err != nil {
		return res, err
	}
	kept := map[string]bool{}
	for _, v := range final.Values {
		for _, it := range strings.Split(string(v), ",") {
			kept[it] = true
		}
	}
	res.kept = len(kept)
	return res, nil
}

func runReplicaLWW(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	tb := lab.NewTable("4 writers add items to one cart by read-modify-write at QUORUM",
		"conflict resolution", "items acknowledged", "items in the cart at the end", "lost updates", "reads that returned siblings", "most siblings at once")
	var runs []lwwRun
	for _, lww := range []bool{true, false} {
		r, err := replicaLWWRun(ctx, env, lww)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
		name := "version vectors, siblings merged by the client"
		if lww {
			name = "last writer wins (Cassandra's rule)"
		}
		tb.AddRow(name, r.acked, r.kept, r.acked-r.kept, r.resolvedMerges, r.maxSiblings)
	}
	lww, vv := runs[0], runs[1]
	notes := []string{
		fmt.Sprintf("Last-writer-wins lost %d of %d acknowledged updates: each concurrent read-modify-write overwrote the others' items, and every one of those writers was told its write succeeded.", lww.acked-lww.kept, lww.acked),
		fmt.Sprintf("Version vectors lost %d: concurrent writes came back as siblings (%d reads, up to %d at once), the client merged them, and the next write, carrying their causal context, replaced them.", vv.acked-vv.kept, vv.resolvedMerges, vv.maxSiblings),
	}
	v, reason := replicaLWWVerdict(lww, vv)
	return &lab.Result{Verdict: v, Reason: reason, Tables: []*lab.Table{tb}, Notes: notes}, nil
}

// replicaLWWVerdict judges "Causal Consistency: ... Implementation: Vector
// clocks" by the updates each rule lost.
func replicaLWWVerdict(lww, vv lwwRun) (lab.Verdict, string) {
	switch {
	case vv.acked != vv.kept:
		return lab.Refutes, fmt.Sprintf("version vectors lost %d of %d acknowledged updates", vv.acked-vv.kept, vv.acked)
	case lww.kept < lww.acked:
		return lab.Agrees, fmt.Sprintf("version vectors kept all %d acknowledged updates by returning concurrent writes as siblings; last-writer-wins silently lost %d of %d", vv.acked, lww.acked-lww.kept, lww.acked)
	}
	return lab.Nuance, fmt.Sprintf("version vectors kept all %d updates, but no writes overlapped enough for last-writer-wins to lose one of its %d", vv.acked, lww.acked)
}

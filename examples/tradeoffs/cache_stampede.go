package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
)

var cacheStampedeExperiment = lab.Experiment{
	Name: "cache-stampede", Group: "cache", Section: cacheSection, WallClock: true,
	Title: "1,000 concurrent misses on one hot key, with and without per-key load de-duplication",
	Guide: "Cache-Aside: ... Cons: Cache inconsistency, cache stampede",
	Run:   runCacheStampede,
}

type stampedeRow struct {
	protected bool
	calls     int64
	lat       sim.Summary
}

func cacheStampedeRun(ctx context.Context, callers int, d time.Duration) ([]stampedeRow, error) {
	var rows []stampedeRow
	for _, protected := range []bool{false, true} {
		mem, err := cache.NewMemory(100, cache.MemoryOptions[string, int]{})
		if err != nil {
			return nil, err
		}
		a, err := cache.NewAside(mem.AsStore(), cache.AsideOptions{TTL: time.Minute, AllowStampede: !protected})
		if err != nil {
			return nil, err
		}
		src := newSlowSource(8, d)
		rec := sim.NewRecorder()
		var wg, arrived sync.WaitGroup
		var failed atomic.Int64
		start, all := make(chan struct{}), make(chan struct{})
		arrived.Add(callers)
		go func() { arrived.Wait(); close(all) }()
		// A load starts only once every caller is about to look the key up,
		// so all of them are concurrent misses however slowly they are
		// scheduled.
		load := func(ctx context.Context, k string) (int, error) {
			<-all
			return src.load(ctx, k)
		}
		for range callers {
			wg.Go(func() {
				<-start
				arrived.Done()
				t0 := time.Now()
				if _, err := a.Get(ctx, "hot", load); err != nil {
					failed.Add(1)
				}
				rec.Record(time.Since(t0))
			})
		}
		close(start)
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n := failed.Load(); n > 0 {
			return nil, fmt.Errorf("%d loads failed", n)
		}
		rows = append(rows, stampedeRow{protected, src.calls.Load(), rec.Summary()})
	}
	return rows, nil
}

func runCacheStampede(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	callers := env.Scale(1000, 1000)
	d := 5 * time.Millisecond
	rows, err := cacheStampedeRun(ctx, callers, d)
	if err != nil {
		return nil, err
	}
	t := lab.NewTable(fmt.Sprintf("%d concurrent Gets of one missing key; source: 8 concurrent requests, %v each", callers, d),
		"stampede protection", "source calls", "p50", "p99", "max")
	for _, r := range rows {
		t.AddRow(map[bool]string{false: "off (every miss loads)", true: "on (one load per key)"}[r.protected], r.calls, r.lat.P50, r.lat.P99, r.lat.Max)
	}
	off, on := rows[0], rows[1]
	verdict, reason := cacheStampedeVerdict(off, on, callers)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Notes: []string{
		fmt.Sprintf("Without protection %d of the %d callers miss before the first load fills the cache, and each calls the source; the calls queue behind its 8 slots, so p99 is %v (≈ %d/8 × %v). With per-key de-duplication the source sees %d call and every caller waits for that one load: p99 %v. This is the guide's \"cache stampede\" con of cache-aside, and its standard fix.", off.calls, callers, lab.Format(off.lat.P99), off.calls, d, on.calls, lab.Format(on.lat.P99)),
		"Wall-clock run: latencies and the unprotected call count vary between runs (they depend on how fast the callers are scheduled); the protected count is always 1.",
	}}, nil
}

// cacheStampedeVerdict judges "cache-aside ... cons: cache stampede" by the
// source calls that concurrent misses of one key make.
func cacheStampedeVerdict(off, on stampedeRow, callers int) (lab.Verdict, string) {
	return lab.Judge(off.calls >= 10*max(on.calls, 1),
		fmt.Sprintf("%d concurrent misses of one key made %d source calls without per-key load de-duplication (p99 %v), %d with it (p99 %v).", callers, off.calls, lab.Format(off.lat.P99), on.calls, lab.Format(on.lat.P99)),
		lab.Refutes,
		fmt.Sprintf("%d concurrent misses of one key made only %d source calls without de-duplication (%d with it): no stampede.", callers, off.calls, on.calls))
}

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

var cacheWriteBehindExperiment = lab.Experiment{
	Name: "cache-write-behind", Group: "cache", Section: cacheSection, WallClock: true,
	Title: "write-through versus write-behind: write latency, source writes, writes at risk in a crash",
	Guide: "Write-Through: ... Cons: Higher write latency ... Write-Behind: ... Pros: Fast writes, reduced DB load. Cons: Potential data loss, complexity",
	Run:   runCacheWriteBehind,
}

type writeRow struct {
	name          string
	lat           sim.Summary
	sourceWrites  int64
	sourceCalls   int64
	meanAtRisk    float64
	maxAtRisk     int
	lostAfterStop int
}

// slowWriter is a source whose every call costs base plus perItem per
// write, as a database round trip plus row work.
type slowWriter struct {
	base, perItem time.Duration
	calls, writes atomic.Int64
}

func (s *slowWriter) Write(ctx context.Context, _ string, _ int) error {
	return s.WriteBatch(ctx, make([]cache.Write[string, int], 1))
}

func (s *slowWriter) Delete(ctx context.Context, _ string) error {
	return s.WriteBatch(ctx, make([]cache.Write[string, int], 1))
}

func (s *slowWriter) WriteBatch(ctx context.Context, b []cache.Write[string, int]) error {
	s.calls.Add(1)
	s.writes.Add(int64(len(b)))
	t := time.NewTimer(s.base + time.Duration(len(b))*s.perItem)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func cacheWriteRun(ctx context.Context, env *lab.Env, writes, writers int) ([]writeRow, error) {
	keys := make([]string, writes)
	z, err := sim.NewZipf(env.Rand(20), 1.0, 1000)
	if err != nil {
		return nil, err
	}
	for i := range keys {
		keys[i] = fmt.Sprint("row:", z.Next())
	}
	var rows []writeRow
	for _, behind := range []bool{false, true} {
		src := &slowWriter{base: time.Millisecond, perItem: 10 * time.Microsecond}
		mem, err := cache.NewMemory(2000, cache.MemoryOptions[string, int]{})
		if err != nil {
			return nil, err
		}
		var set func(ctx context.Context, k string, v int) error
		var wb *cache.WriteBehind[string, int]
		name := "write-through"
		if behind {
			name = "write-behind (batch 100, every 50 ms)"
			wb, err = cache.NewWriteBehind[string, int](mem.AsStore(), src, cache.WriteBehindOptions{BatchSize: 100, Interval: 50 * time.Millisecond})
			if err != nil {
				return nil, err
			}
			set = wb.Set
		} else {
			wt, err := cache.NewWriteThrough[string, int](mem.AsStore(), src, 0)
			if err != nil {
				return nil, err
			}
			set = wt.Set
		}
		// Sample what a crash would lose at random moments.
		var samples []int
		stop := make(chan struct{})
		sampled := make(chan struct{})
		r := env.Rand(21)
		go func() {
			defer close(sampled)
			for {
				t := time.NewTimer(time.Duration(r.Int64N(int64(2 * time.Millisecond))))
				select {
				case <-stop:
					t.Stop()
					return
				case <-t.C:
				}
				if wb != nil {
					samples = append(samples, wb.Stats().Queued)
				} else {
					samples = append(samples, 0) // acknowledged = in the source
				}
			}
		}()
		rec := sim.NewRecorder()
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range writers {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(writes) || ctx.Err() != nil {
						return
					}
					t0 := time.Now()
					if err := set(ctx, keys[i], int(i)); err != nil {
						failed.Add(1)
					}
					rec.Record(time.Since(t0))
					// Writers arrive at a steady pace rather than all at once.
					time.Sleep(200*time.Microsecond - min(time.Since(t0), 200*time.Microsecond))
				}
			})
		}
		wg.Wait()
		close(stop)
		<-sampled
		row := writeRow{name: name, lat: rec.Summary()}
		if wb != nil {
			if err := wb.Close(ctx); err != nil {
				return nil, err
			}
			row.lostAfterStop = len(wb.Unflushed())
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n := failed.Load(); n > 0 {
			return nil, fmt.Errorf("%s: %d writes failed", name, n)
		}
		row.sourceWrites, row.sourceCalls = src.writes.Load(), src.calls.Load()
		sum := 0
		for _, s := range samples {
			sum += s
			row.maxAtRisk = max(row.maxAtRisk, s)
		}
		if len(samples) > 0 {
			row.meanAtRisk = float64(sum) / float64(len(samples))
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func runCacheWriteBehind(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	writes, writers := env.Scale(20_000, 2_000), 16
	rows, err := cacheWriteRun(ctx, env, writes, writers)
	if err != nil {
		return nil, err
	}
	t := lab.NewTable(fmt.Sprintf("%d writes by %d writers (one write per writer every 200 µs at most), Zipf(1.0) over 1,000 rows; source call = 1 ms + 10 µs per row", writes, writers),
		"pattern", "write p50", "write p99", "source rows written", "source calls", "at risk in a crash (mean)", "at risk (max)", "lost after Close")
	for _, r := range rows {
		t.AddRow(r.name, r.lat.P50, r.lat.P99, r.sourceWrites, r.sourceCalls, fmt.Sprintf("%.1f", r.meanAtRisk), r.maxAtRisk, r.lostAfterStop)
	}
	wt, wb := rows[0], rows[1]
	verdict, reason := cacheWriteVerdict(wt, wb)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Notes: []string{
		fmt.Sprintf("Write-through pays the source round trip on every write (p99 %v); write-behind acknowledges after the cache (p99 %v) — the guide's \"higher write latency\" versus \"fast writes\".", lab.Format(wt.lat.P99), lab.Format(wb.lat.P99)),
		fmt.Sprintf("Coalescing repeated writes to hot rows and batching cut the source's load from %d rows in %d calls to %d rows in %d calls (\"reduced DB load\").", wt.sourceWrites, wt.sourceCalls, wb.sourceWrites, wb.sourceCalls),
		fmt.Sprintf("The price is the guide's \"potential data loss\": a crash at a random moment would have lost %.1f acknowledged writes on average (up to %d); write-through loses none. A clean Close flushed everything (%d left).", wb.meanAtRisk, wb.maxAtRisk, wb.lostAfterStop),
	}}, nil
}

// cacheWriteVerdict judges each pro and con the guide gives: write-through's
// higher write latency, write-behind's fast writes and reduced database
// load, and its potential data loss.
func cacheWriteVerdict(wt, wb writeRow) (lab.Verdict, string) {
	numbers := fmt.Sprintf("write p99 %v through against %v behind, %d source calls against %d, up to %d acknowledged writes at risk in a crash behind and none through",
		lab.Format(wt.lat.P99), lab.Format(wb.lat.P99), wt.sourceCalls, wb.sourceCalls, wb.maxAtRisk)
	return lab.Judge(wt.lat.P99 > wb.lat.P99 && wb.sourceCalls < wt.sourceCalls && wb.maxAtRisk > 0,
		"Each pro and con holds: "+numbers+".",
		lab.Nuance,
		"Not every pro and con showed: "+numbers+".")
}

package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

var ratelimitMemoryExperiment = lab.Experiment{
	Name:      "ratelimit-memory",
	Group:     "ratelimit",
	Title:     "memory per key for each algorithm (the sliding log grows with the limit)",
	Section:   rlSection,
	Guide:     "IP-based Limiting: Per-IP rate limits; User-based Limiting: Per-user rate limits",
	WallClock: true, // heap measurements vary by a few bytes between runs
	Run:       runRateLimitMemory,
}

// rlMemory is the measured heap per key of a Keyed holding one algorithm.
type rlMemory struct {
	name   string
	events int
	perKey float64
}

func measureMemory(keys int) ([]rlMemory, error) {
	var out []rlMemory
	for _, events := range []int{10, 100, 1000} {
		limit := ratelimit.Limit{Events: events, Per: time.Minute, Burst: events}
		for _, alg := range ratelimit.Algorithms {
			before := heapAlloc()
			k, err := ratelimit.NewKeyed(alg, ratelimit.KeyedOptions{MaxKeys: keys}, limit)
			if err != nil {
				return nil, err
			}
			for i := range keys {
				if _, err := k.AllowN(sim.Epoch, "user-"+strconv.Itoa(i), 1); err != nil {
					return nil, err
				}
			}
			after := heapAlloc()
			out = append(out, rlMemory{alg.String(), events, float64(int64(after)-int64(before)) / float64(keys)})
			runtime.KeepAlive(k)
		}
	}
	return out, nil
}

func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func runRateLimitMemory(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	keys := env.Scale(50_000, 5_000)
	cells, err := measureMemory(keys)
	if err != nil {
		return nil, err
	}
	t := lab.NewTable(fmt.Sprintf("Heap per key of a Keyed limiter with %d keys (key string and table slot holding the state)", keys),
		"algorithm", "10/min", "100/min", "1000/min")
	for _, alg := range ratelimit.Algorithms {
		row := []any{alg.String()}
		for _, c := range cells {
			if c.name == alg.String() {
				row = append(row, fmt.Sprintf("%.0f B", math.Round(c.perKey/8)*8))
			}
		}
		t.AddRow(row...)
	}
	var log1000, gcra float64
	for _, c := range cells {
		if c.events == 1000 && c.name == "sliding-log" {
			log1000 = c.perKey
		}
		if c.events == 1000 && c.name == "gcra" {
			gcra = c.perKey
		}
	}
	verdict, reason := rlMemoryVerdict(gcra, log1000)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Notes: []string{
		fmt.Sprintf("Counters and buckets cost the same whatever the limit (about %.0f B per key here, most of it the key string and the table slot); the sliding log stores 8 bytes per allowed event, so at 1000/min it needs %.0f B per key — %.0f× a GCRA key. That is the guide-level trade: exactness costs memory proportional to the limit.", gcra, log1000, log1000/gcra),
		fmt.Sprintf("A million keys therefore cost about %.0f MB with a GCRA and %.1f GB with a 1000/min log; Keyed's MaxKeys bounds the count whatever clients send.", gcra, log1000/1000),
	}}, ctx.Err()
}

// rlMemoryVerdict judges "IP-based limiting: per-IP rate limits; user-based
// limiting: per-user rate limits" by what one key's state costs: per-key
// limits hold as long as the algorithm's state per key is small.
func rlMemoryVerdict(gcra, log1000 float64) (lab.Verdict, string) {
	return lab.Judge(log1000 <= 10*gcra,
		fmt.Sprintf("Per-key limits are cheap with every algorithm: %.0f B per key for GCRA, %.0f B for a 1000/min sliding log.", gcra, log1000),
		lab.Nuance,
		fmt.Sprintf("Per-key limits cost memory for every key: %.0f B per key for a counter or bucket, %.0f B for a 1000/min sliding log (%.0f×), so per-IP or per-user limits need a bound on the number of keys and a constant-size algorithm.", gcra, log1000, log1000/gcra))
}

package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

var ratelimitAccuracyExperiment = lab.Experiment{
	Name:    "ratelimit-accuracy",
	Group:   "ratelimit",
	Title:   "admitted versus ideal over many windows, per algorithm and load",
	Section: rlSection,
	Guide:   "Rate Limiting: Prevent abuse ... Token Bucket: Smooth rate limiting ... Leaky Bucket: Fixed rate processing ... Sliding Window: Time-based rate limiting",
	Run:     runRateLimitAccuracy,
}

// rlAccuracy is one (load, algorithm) cell of the accuracy experiment.
type rlAccuracy struct {
	load        float64
	name        string
	offered     int
	admitted    int
	ideal       float64 // min(offered, limit × duration)
	worstWindow int     // most admitted in any window of Per
	overWindows float64 // fraction of 1s windows starting on a 10 ms grid holding more than the limit
	// The fractions of requests allowed that an exact log with the same
	// history would have refused, and refused that it would have allowed.
	wrongAllow, wrongDeny float64
}

var rlLoads = []float64{0.5, 1, 2, 5}

// rlAccuracyEvents is the limit of the accuracy experiment: 100 per second.
const rlAccuracyEvents = 100

func simulateAccuracy(env *lab.Env, d time.Duration) ([]rlAccuracy, error) {
	limit := ratelimit.Limit{Events: rlAccuracyEvents, Per: time.Second, Burst: rlAccuracyEvents}
	var out []rlAccuracy
	for li, load := range rlLoads {
		gen, err := sim.NewPoisson(env.Rand(uint64(10+li)), load*float64(limit.Events))
		if err != nil {
			return nil, err
		}
		arrivals := arrivalTimes(gen, d)
		for _, c := range rlCases {
			if c.queue {
				continue
			}
			dec, err := rlDecisions(c.alg, limit, arrivals)
			if err != nil {
				return nil, err
			}
			// Judge each decision as the exact log would have, given the
			// same history: allow iff fewer than Events were admitted in
			// the trailing window.
			var admitted []time.Duration
			wrongAllow, wrongDeny, lo := 0, 0, 0
			for i, ok := range dec {
				t := arrivals[i]
				for lo < len(admitted) && admitted[lo] <= t-limit.Per {
					lo++
				}
				switch exact := len(admitted)-lo < limit.Events; {
				case ok && !exact:
					wrongAllow++
				case !ok && exact:
					wrongDeny++
				}
				if ok {
					admitted = append(admitted, t)
				}
			}
			out = append(out, rlAccuracy{
				load: load, name: c.name, offered: len(arrivals), admitted: len(admitted),
				ideal:       math.Min(float64(len(arrivals)), float64(limit.Events)*d.Seconds()),
				worstWindow: maxInWindow(admitted, limit.Per),
				overWindows: overWindows(admitted, limit, d),
				wrongAllow:  float64(wrongAllow) / float64(max(len(arrivals), 1)),
				wrongDeny:   float64(wrongDeny) / float64(max(len(arrivals), 1)),
			})
		}
	}
	return out, nil
}

func rlDecisions(alg ratelimit.Algorithm, limit ratelimit.Limit, arrivals []time.Duration) ([]bool, error) {
	lim, err := ratelimit.New(alg, limit)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(arrivals))
	for i, at := range arrivals {
		d, err := lim.AllowN(sim.Epoch.Add(at), 1)
		if err != nil {
			return nil, err
		}
		out[i] = d.Allowed
	}
	return out, nil
}

// overWindows returns the fraction of windows [t, t+Per), t on a 10 ms
// grid, that hold more than the limit.
func overWindows(ts []time.Duration, limit ratelimit.Limit, d time.Duration) float64 {
	step := 10 * time.Millisecond
	over, total := 0, 0
	lo, hi := 0, 0
	for t := time.Duration(0); t+limit.Per <= d; t += step {
		for lo < len(ts) && ts[lo] < t {
			lo++
		}
		for hi < len(ts) && ts[hi] < t+limit.Per {
			hi++
		}
		total++
		if hi-lo > limit.Events {
			over++
		}
	}
	return float64(over) / float64(max(total, 1))
}

func runRateLimitAccuracy(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	d := time.Duration(env.Scale(600, 60)) * time.Second
	cells, err := simulateAccuracy(env, d)
	if err != nil {
		return nil, err
	}
	t := lab.NewTable(fmt.Sprintf("Limit 100/s (burst 100), Poisson arrivals for %v at each load", d),
		"load", "algorithm", "admitted / ideal", "worst 1s window / limit", "1s windows over the limit", "wrongly allowed", "wrongly limited")
	chart := &lab.Chart{Title: "Worst 1 s window relative to the limit", XLabel: "offered load (× limit)", YLabel: "most admitted in any 1 s (× limit)"}
	series := map[string]*lab.Series{}
	for _, c := range cells {
		t.AddRow(fmt.Sprintf("%.1f×", c.load), c.name, float64(c.admitted)/c.ideal, float64(c.worstWindow)/100,
			fmt.Sprintf("%.2f%%", 100*c.overWindows), fmt.Sprintf("%.3f%%", 100*c.wrongAllow), fmt.Sprintf("%.3f%%", 100*c.wrongDeny))
		s := series[c.name]
		if s == nil {
			s = &lab.Series{Name: c.name}
			series[c.name] = s
		}
		s.X, s.Y = append(s.X, c.load), append(s.Y, float64(c.worstWindow)/100)
	}
	for _, c := range rlCases {
		if s := series[c.name]; s != nil {
			chart.Series = append(chart.Series, *s)
		}
	}
	at := func(load float64, name string) rlAccuracy {
		return find(cells, func(c rlAccuracy) bool { return c.load == load && c.name == name })
	}
	sw, fw, tb := at(5, "sliding-window"), at(5, "fixed-window"), at(5, "token-bucket")
	verdict, reason := rlAccuracyVerdict(cells, 5)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Charts: []*lab.Chart{chart}, Notes: []string{
		fmt.Sprintf("Every algorithm holds the long-run rate: at 5× overload admitted/ideal is %.3f (fixed window), %.3f (sliding counter), %.3f (token bucket).",
			float64(fw.admitted)/fw.ideal, float64(sw.admitted)/sw.ideal, float64(tb.admitted)/tb.ideal),
		fmt.Sprintf("They differ in the short run. The sliding log never exceeds the limit in any 1 s window; the fixed window's worst window reaches %.2f× at 5× load and %.2f%% of sliding windows are over; the sliding counter's worst is %.2f× with %.2f%% over; buckets allow burst + rate (up to 2×) after an idle spell.",
			float64(fw.worstWindow)/100, 100*fw.overWindows, float64(sw.worstWindow)/100, 100*sw.overWindows),
		"\"Wrongly\" is measured against the exact sliding window of 1 s: the buckets and the fixed window enforce a different definition of the limit (burst + rate, calendar windows), so their \"wrongly allowed\" column is the excess that definition permits, not a bug.",
		fmt.Sprintf("Judged request by request against an exact log with the same history, the sliding counter wrongly allows %.3f%% / %.3f%% / %.3f%% of requests at 0.5× / 1× / 5× load and wrongly limits %.3f%% / %.3f%% / %.3f%%. Cloudflare published 0.003%% of requests wrongly allowed or limited over 400 million requests of real traffic, mostly below the limit: our under-limit figure agrees (zero). At and above the limit ours is far higher — a synthetic Poisson load sits at the threshold all the time, unlike Cloudflare's traffic: at 1× the counter errs both ways (it assumes the previous window's events were spread evenly), and under heavy overload almost all its errors are refusals the exact log would have admitted, while its worst 1 s window stays within %.2f× the limit.",
			100*at(0.5, "sliding-window").wrongAllow, 100*at(1, "sliding-window").wrongAllow, 100*sw.wrongAllow,
			100*at(0.5, "sliding-window").wrongDeny, 100*at(1, "sliding-window").wrongDeny, 100*sw.wrongDeny, float64(sw.worstWindow)/100),
	}}, ctx.Err()
}

// rlAccuracyVerdict judges the guide's algorithms as ways to "control
// request flow" at the given overload: all hold the long-run rate, and the
// claim is nuanced when some of them exceed the limit in a 1 s window by
// more than 10%.
func rlAccuracyVerdict(cells []rlAccuracy, load float64) (lab.Verdict, string) {
	lo, hi := math.Inf(1), 0.0
	var over []string
	for _, c := range cells {
		if c.load != load {
			continue
		}
		ratio := float64(c.admitted) / c.ideal
		lo, hi = min(lo, ratio), max(hi, ratio)
		if float64(c.worstWindow) > 1.1*rlAccuracyEvents {
			over = append(over, fmt.Sprintf("%s %.2f×", c.name, float64(c.worstWindow)/rlAccuracyEvents))
		}
	}
	if len(over) > 0 {
		return lab.Nuance, fmt.Sprintf("At %.0f× overload every algorithm holds the long-run rate (admitted / ideal %.3f to %.3f), but they define the limit differently: the worst 1 s window reaches %s of the limit, where the sliding log never exceeds it.",
			load, lo, hi, strings.Join(over, ", "))
	}
	return lab.Agrees, fmt.Sprintf("At %.0f× overload every algorithm holds the long-run rate (admitted / ideal %.3f to %.3f) and no 1 s window exceeds the limit by more than 10%%.", load, lo, hi)
}

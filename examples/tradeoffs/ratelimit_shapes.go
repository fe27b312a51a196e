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

var ratelimitShapesExperiment = lab.Experiment{
	Name:    "ratelimit-shapes",
	Group:   "ratelimit",
	Title:   "what each rate-limit algorithm admits from the same bursty traffic",
	Section: rlSection,
	Guide:   "Token Bucket: Smooth rate limiting; Leaky Bucket: Fixed rate processing; Sliding Window: Time-based rate limiting",
	Run:     runRateLimitShapes,
}

// rlShapes is the result of the shapes experiment, kept for its test.
type rlShapes struct {
	limit    ratelimit.Limit
	offered  int
	passes   map[string][]time.Duration
	maxIn1s  map[string]int
	boundary map[string]int // admitted from the boundary burst
	gapCV    map[string]float64
}

// shapesBurst is the first burst: 2× the limit spread over the last and
// first 100ms of two windows, as a client that knows the boundary sends it.
func shapesBurst(limit ratelimit.Limit) []time.Duration {
	var out []time.Duration
	n := 2 * limit.Events
	for i := range n {
		out = append(out, 900*time.Millisecond+time.Duration(i)*200*time.Millisecond/time.Duration(n))
	}
	return out
}

func simulateShapes(env *lab.Env, d time.Duration) (*rlShapes, error) {
	limit := ratelimit.Limit{Events: 10, Per: time.Second, Burst: 10}
	gen, err := sim.NewBursty(env.Rand(1), 60, 2, time.Second, 3*time.Second)
	if err != nil {
		return nil, err
	}
	arrivals := shapesBurst(limit)
	for _, t := range arrivalTimes(gen, d-2*time.Second) {
		arrivals = append(arrivals, 2*time.Second+t)
	}
	r := &rlShapes{limit: limit, offered: len(arrivals), passes: map[string][]time.Duration{},
		maxIn1s: map[string]int{}, boundary: map[string]int{}, gapCV: map[string]float64{}}
	for _, c := range rlCases {
		passes, err := rlRun(c, limit, arrivals)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		r.passes[c.name] = passes
		r.maxIn1s[c.name] = maxInWindow(passes, time.Second)
		firstBurst, _ := rlRun(c, limit, shapesBurst(limit))
		r.boundary[c.name] = len(firstBurst)
		r.gapCV[c.name] = gapCV(passes, limit.Per/time.Duration(limit.Events))
	}
	return r, nil
}

// gapCV is the coefficient of variation of the gaps between passes that
// are at most 2 intervals apart (inside a busy period): 0 is perfectly even.
func gapCV(ts []time.Duration, interval time.Duration) float64 {
	var gaps []float64
	for i := 1; i < len(ts); i++ {
		if g := ts[i] - ts[i-1]; g <= 2*interval {
			gaps = append(gaps, float64(g))
		}
	}
	if len(gaps) < 2 {
		return 0
	}
	var sum, sq float64
	for _, g := range gaps {
		sum += g
	}
	mean := sum / float64(len(gaps))
	for _, g := range gaps {
		sq += (g - mean) * (g - mean)
	}
	return math.Sqrt(sq/float64(len(gaps))) / mean
}

func runRateLimitShapes(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	d := time.Duration(env.Scale(60, 20)) * time.Second
	r, err := simulateShapes(env, d)
	if err != nil {
		return nil, err
	}
	res := &lab.Result{}
	t := lab.NewTable(fmt.Sprintf("Limit %v; %d requests in %v: a 20-request burst straddling the 1s boundary, then on/off bursts (60/s for 1s, 2/s for 3s)", r.limit, r.offered, d),
		"algorithm", "admitted", "of the boundary burst (20)", "most in any 1s", "most in any 100ms", "gap CV in busy periods")
	chart := &lab.Chart{Title: "Admitted per 250 ms, first 20 s", XLabel: "time (s)", YLabel: "admitted (per 250 ms)"}
	for _, c := range rlCases {
		p := r.passes[c.name]
		t.AddRow(c.name, len(p), r.boundary[c.name], r.maxIn1s[c.name], maxInWindow(p, 100*time.Millisecond), r.gapCV[c.name])
		s := lab.Series{Name: c.name}
		bins := make([]float64, 80)
		for _, at := range p {
			if b := int(at / (250 * time.Millisecond)); b < len(bins) {
				bins[b]++
			}
		}
		for i, v := range bins {
			s.X, s.Y = append(s.X, float64(i)*0.25), append(s.Y, v)
		}
		chart.Series = append(chart.Series, s)
	}
	res.Tables = append(res.Tables, t)
	res.Charts = append(res.Charts, chart)
	res.Verdict, res.Reason = rlShapesVerdict(r)
	res.Notes = append(res.Notes,
		fmt.Sprintf("Fixed window: the burst across the boundary passes %d of 20 — twice the limit within 200 ms, the double burst the guide's sliding window exists to prevent. The sliding log passes %d and the sliding counter %d.",
			r.boundary["fixed-window"], r.boundary["sliding-log"], r.boundary["sliding-window"]),
		fmt.Sprintf("Token bucket and GCRA admit exactly the same (%d, %d): GCRA is the token bucket stored as one timestamp. A full bucket passes its burst of %d at once, then the refill rate: %d in the worst 1 s (burst + rate, less one).",
			len(r.passes["token-bucket"]), len(r.passes["gcra"]), r.limit.Burst, r.maxIn1s["token-bucket"]),
		fmt.Sprintf("Leaky bucket as a queue (\"fixed rate processing\"): the same admissions as the meter, but they leave one interval (100 ms) apart — gap CV %.3g versus %.3g for the token bucket and %.3g for the fixed window. The price is queueing delay instead of a fast 429.",
			r.gapCV["leaky-bucket (queue)"], r.gapCV["token-bucket"], r.gapCV["fixed-window"]),
		"The sliding log is exact: no 1 s window holds more than the limit. The sliding counter approximates it from two counters.",
	)
	return res, ctx.Err()
}

// rlShapesVerdict judges "token bucket: smooth rate limiting" by how the
// token bucket passes the same bursty traffic: its most in one interval of
// the limit and in any second, and the spread of its gaps, against the
// leaky bucket used as a queue, which spaces events by design.
func rlShapesVerdict(r *rlShapes) (lab.Verdict, string) {
	const bucket, queue = "token-bucket", "leaky-bucket (queue)"
	interval := r.limit.Per / time.Duration(r.limit.Events)
	inInterval := maxInWindow(r.passes[bucket], interval)
	var more []string
	for _, c := range rlCases {
		if n := r.maxIn1s[c.name]; n > r.maxIn1s[bucket] {
			more = append(more, fmt.Sprintf("%s (%d)", c.name, n))
		}
	}
	rank := "no algorithm passes more in a second"
	if len(more) > 0 {
		rank = "only " + strings.Join(more, ", ") + " passes more in a second"
	}
	if inInterval > 1 && r.gapCV[bucket] > 2*r.gapCV[queue] {
		return lab.Refutes, fmt.Sprintf("The token bucket is not smooth: it passes %d requests within one %v interval and %d in its worst second (gap CV %.2f), and %s; the smooth one is the leaky bucket as a queue, one request per interval (gap CV %.2f).",
			inInterval, interval, r.maxIn1s[bucket], r.gapCV[bucket], rank, r.gapCV[queue])
	}
	return lab.Agrees, fmt.Sprintf("The token bucket spaces what it passes: at most %d within one %v interval, gap CV %.2f against %.2f for the leaky bucket as a queue.",
		inInterval, interval, r.gapCV[bucket], r.gapCV[queue])
}

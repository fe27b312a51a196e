package main

import (
	"slices"
	"time"

	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

const rlSection = "Security Considerations → Rate Limiting"

// rlCase is one limiter under test in the lab: an in-memory algorithm, or
// the leaky bucket used as a queue (admitted events leave at their slot).
type rlCase struct {
	name  string
	alg   ratelimit.Algorithm
	queue bool
}

var rlCases = []rlCase{
	{"token-bucket", ratelimit.AlgTokenBucket, false},
	{"gcra", ratelimit.AlgGCRA, false},
	{"leaky-bucket (meter)", ratelimit.AlgLeakyBucket, false},
	{"leaky-bucket (queue)", ratelimit.AlgLeakyBucket, true},
	{"fixed-window", ratelimit.AlgFixedWindow, false},
	{"sliding-window", ratelimit.AlgSlidingWindow, false},
	{"sliding-log", ratelimit.AlgSlidingLog, false},
}

// rlRun feeds arrivals (virtual offsets from sim.Epoch, in order) to one
// limiter and returns when each admitted event passes: at once for a
// meter, at its departure slot for the queue.
func rlRun(c rlCase, limit ratelimit.Limit, arrivals []time.Duration) ([]time.Duration, error) {
	lim, err := ratelimit.New(c.alg, limit)
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	var e sim.Engine
	clock := e.Clock()
	interval := limit.Per / time.Duration(limit.Events)
	for _, at := range arrivals {
		e.At(at, func() {
			d, aerr := lim.AllowN(clock(), 1)
			if aerr != nil {
				err = aerr
				e.Stop()
				return
			}
			if !d.Allowed {
				return
			}
			pass := e.Now()
			if c.queue { // the bucket drains at ResetAfter; this event's slot is one interval before
				pass += d.ResetAfter - interval
			}
			out = append(out, pass)
		})
	}
	if rerr := e.Run(sim.Forever); rerr != nil {
		return nil, rerr
	}
	slices.Sort(out)
	return out, err
}

// maxInWindow returns the most events in any window [t, t+w) of sorted times.
func maxInWindow(ts []time.Duration, w time.Duration) int {
	best, j := 0, 0
	for i := range ts {
		for ts[i]-ts[j] >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// arrivalTimes draws arrivals until d from gen.
func arrivalTimes(gen sim.Arrivals, d time.Duration) []time.Duration {
	var out []time.Duration
	for t := gen.Next(); t < d; t += gen.Next() {
		out = append(out, t)
	}
	return out
}

// rlSplit is how offered traffic spreads over the 4 instances.
type rlSplit struct {
	name   string
	shares []float64
}

var rlSplits = []rlSplit{
	{"balanced 25/25/25/25", []float64{0.25, 0.25, 0.25, 0.25}},
	{"skewed 70/10/10/10", []float64{0.7, 0.1, 0.1, 0.1}},
}

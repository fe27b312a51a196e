package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

// Verdicts follow the numbers: each case feeds an experiment's verdict
// numbers that make it agree, and numbers that flip it, and checks the
// reason quotes them.
func TestVerdictsFollowTheNumbers(t *testing.T) {
	p99 := func(d time.Duration) sim.Summary { return sim.Summary{P99: d} }

	// lb-health: the reason says what P2C did with the failing backend's
	// share, whichever way it went.
	healthNone := lbHealthPoint{errors: 1236, errorRate: 0.313}
	healthLow := lbHealthPoint{errors: 700, errorRate: 0.18}
	// ratelimit-shapes: a token bucket that passes its burst at once, and
	// one that spaces its passes as evenly as the queue.
	burst, even := []time.Duration{}, []time.Duration{}
	for i := range 10 {
		burst = append(burst, time.Duration(i)*time.Millisecond)
		even = append(even, time.Duration(i)*100*time.Millisecond)
	}
	shapes := func(bucket []time.Duration, cv float64) *rlShapes {
		return &rlShapes{
			limit:   ratelimit.Limit{Events: 10, Per: time.Second, Burst: 10},
			passes:  map[string][]time.Duration{"token-bucket": bucket, "leaky-bucket (queue)": even},
			maxIn1s: map[string]int{"token-bucket": 19, "fixed-window": 20, "leaky-bucket (queue)": 10},
			gapCV:   map[string]float64{"token-bucket": cv, "leaky-bucket (queue)": 0.12},
		}
	}
	// consensus-cap: what the minority side did.
	capRun := func(writesOK, staleOK int) capResult {
		return capResult{sides: []capSide{
			{name: "minority", nodes: 2, writes: 10, writesOK: writesOK, linReads: 10, staleReads: 10, staleOK: staleOK},
			{name: "majority", nodes: 3, writes: 10, writesOK: 10, linReads: 10, linReadsOK: 10, staleReads: 10, staleOK: 10},
		}}
	}
	move := func(algo string, ratio float64) movementRow {
		return movementRow{algo: algo, n: 100, addRatio: ratio, addMoved: ratio / 101}
	}
	policies := func(lfuOnShift float64) []policyPoint {
		return []policyPoint{
			{"zipf", cache.TinyLFU, 100, 0.60}, {"zipf", cache.LRU, 100, 0.58}, {"zipf", cache.LFU, 100, 0.59},
			{"shifting", cache.TinyLFU, 100, 0.50}, {"shifting", cache.LRU, 100, 0.49}, {"shifting", cache.LFU, 100, lfuOnShift},
		}
	}

	vsOtter := func(sharded float64) []otterRow {
		return []otterRow{
			{workload: "zipf 0.99", size: 1000, shards: 8, sharded: sharded, single: 0.48, peer: 0.47},
			{workload: "zipf 0.99", size: 10000, shards: 32, sharded: 0.64, single: 0.64, peer: 0.63},
		}
	}

	for name, tc := range map[string]struct {
		got    func() (lab.Verdict, string)
		want   lab.Verdict
		quotes []string
	}{
		"cache-vs-otter agrees within a point": {
			got:    func() (lab.Verdict, string) { return cacheVsOtterVerdict(vsOtter(0.465)) },
			want:   lab.Agrees,
			quotes: []string{"-0.50 points at worst", "zipf 0.99, 1000 entries"},
		},
		"cache-vs-otter nuance when sharding costs": {
			got:    func() (lab.Verdict, string) { return cacheVsOtterVerdict(vsOtter(0.45)) },
			want:   lab.Nuance,
			quotes: []string{"trails otter's by 2.00 points", "8 shards"},
		},
		"lb-health agrees, P2C over its share": {
			got:    func() (lab.Verdict, string) { return lbHealthVerdict(healthNone, lbHealthPoint{errors: 5}) },
			want:   lab.Agrees,
			quotes: []string{"from 1236 to 5", "31.3%", "more than its 20.0% share"},
		},
		"lb-health refutes when checks barely help": {
			got:    func() (lab.Verdict, string) { return lbHealthVerdict(healthNone, lbHealthPoint{errors: 1000}) },
			want:   lab.Refutes,
			quotes: []string{"from 1236 to 1000"},
		},
		"lb-health, P2C within its share": {
			got:    func() (lab.Verdict, string) { return lbHealthVerdict(healthLow, lbHealthPoint{errors: 5}) },
			want:   lab.Agrees,
			quotes: []string{"18.0%", "no more than its 20.0% share"},
		},
		"ratelimit-shapes: a bursty token bucket refutes smooth": {
			got:    func() (lab.Verdict, string) { return rlShapesVerdict(shapes(burst, 0.95)) },
			want:   lab.Refutes,
			quotes: []string{"passes 10 requests within one 100ms interval", "19 in its worst second", "only fixed-window (20)"},
		},
		"ratelimit-shapes: an even token bucket agrees": {
			got:    func() (lab.Verdict, string) { return rlShapesVerdict(shapes(even, 0.1)) },
			want:   lab.Agrees,
			quotes: []string{"at most 1 within one 100ms interval"},
		},
		"consensus-cap: per operation": {
			got:    func() (lab.Verdict, string) { return consensusCAPVerdict(capRun(0, 10)) },
			want:   lab.Nuance,
			quotes: []string{"per operation", "0/10 writes", "10/10 stale reads"},
		},
		"consensus-cap: CP for every operation": {
			got:    func() (lab.Verdict, string) { return consensusCAPVerdict(capRun(0, 0)) },
			want:   lab.Agrees,
			quotes: []string{"0/10 stale reads"},
		},
		"consensus-cap: split brain": {
			got:    func() (lab.Verdict, string) { return consensusCAPVerdict(capRun(3, 10)) },
			want:   lab.Refutes,
			quotes: []string{"3/10 writes"},
		},
		"scaling agrees": {
			got: func() (lab.Verdict, string) {
				return scalingVerdict(scalingPoint{sim: p99(100 * time.Millisecond)}, scalingPoint{sim: p99(120 * time.Millisecond)}, scalingPoint{sim: p99(360 * time.Millisecond)})
			},
			want:   lab.Agrees,
			quotes: []string{"p99 360ms, 3.0× the 120ms"},
		},
		"scaling, random assignment close to a shared queue": {
			got: func() (lab.Verdict, string) {
				return scalingVerdict(scalingPoint{sim: p99(100 * time.Millisecond)}, scalingPoint{sim: p99(120 * time.Millisecond)}, scalingPoint{sim: p99(130 * time.Millisecond)})
			},
			want: lab.Nuance,
		},
		"shard-movement: modulo only": {
			got:    func() (lab.Verdict, string) { return shardMovementVerdict(move("modulo", 100), move("jump", 0.98)) },
			want:   lab.Nuance,
			quotes: []string{"100.0× the ideal", "0.98×"},
		},
		"shard-movement: both hard": {
			got:  func() (lab.Verdict, string) { return shardMovementVerdict(move("modulo", 100), move("jump", 3)) },
			want: lab.Agrees,
		},
		"shard-movement: neither": {
			got:  func() (lab.Verdict, string) { return shardMovementVerdict(move("modulo", 1.1), move("jump", 1)) },
			want: lab.Refutes,
		},
		"cache-refresh-ahead: no misses": {
			got: func() (lab.Verdict, string) {
				return cacheRefreshVerdict(refreshRow{warmMisses: 60, loads: 56}, refreshRow{loads: 94}, refreshRow{loads: 90})
			},
			want: lab.Agrees,
		},
		"cache-refresh-ahead: fewer, not none": {
			got: func() (lab.Verdict, string) {
				return cacheRefreshVerdict(refreshRow{warmMisses: 60, loads: 56}, refreshRow{loads: 94}, refreshRow{warmMisses: 5, loads: 90})
			},
			want:   lab.Nuance,
			quotes: []string{"0 times", "and 5 (XFetch) against 60"},
		},
		"discovery-watch-fanout: every change once, in order": {
			got: func() (lab.Verdict, string) {
				return discoveryFanoutVerdict(fanoutResult{watchers: 30, writes: 40, resumed: 10})
			},
			want:   lab.Agrees,
			quotes: []string{"30 watchers saw 40 acknowledged writes with 0 gaps and 0 duplicates"},
		},
		"discovery-watch-fanout: a lost change": {
			got: func() (lab.Verdict, string) {
				return discoveryFanoutVerdict(fanoutResult{watchers: 30, writes: 40, gaps: 1})
			},
			want:   lab.Refutes,
			quotes: []string{"1 gaps"},
		},
		"cache-policies: one winner everywhere": {
			got:    func() (lab.Verdict, string) { return cachePoliciesVerdict(policies(0.45)) },
			want:   lab.Agrees,
			quotes: []string{"tinylfu on zipf, tinylfu on shifting"},
		},
		"cache-policies: the winner depends on the workload": {
			got:    func() (lab.Verdict, string) { return cachePoliciesVerdict(policies(0.55)) },
			want:   lab.Nuance,
			quotes: []string{"lfu on shifting"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			v, reason := tc.got()
			assert.Equal(t, tc.want, v, reason)
			assert.NotEmpty(t, reason)
			for _, q := range tc.quotes {
				assert.Contains(t, reason, q)
			}
		})
	}
}

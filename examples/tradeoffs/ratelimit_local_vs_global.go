package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

var ratelimitLocalVsGlobalExperiment = lab.Experiment{
	Name:    "ratelimit-local-vs-global",
	Group:   "ratelimit",
	Title:   "4 instances: per-instance local limits versus one global limit (virtual time)",
	Section: "Performance Considerations → Throughput Optimization; " + rlSection,
	Guide:   "API Gateway: Centralized routing and throttling; Rate Limiting: Control request flow",
	Run:     runRateLimitLocalVsGlobal,
}

// rlDeploy is how the limit is configured across instances.
type rlDeploy struct {
	name   string
	global bool // one limiter shared by every instance (what Redis gives)
	divide bool // each instance gets limit/N
}

var rlDeploys = []rlDeploy{
	{"local: full limit per instance", false, false},
	{"local: limit ÷ 4 per instance", false, true},
	{"global: one shared limit", true, false},
}

const rlInstances = 4

// rlGlobalCell is the admitted rate relative to the global limit.
type rlGlobalCell struct {
	split, deploy string
	ratio         float64
}

// simulateLocalVsGlobal runs Poisson traffic at 2× a 100/s limit, split
// over 4 instances, through each deployment on virtual time.
func simulateLocalVsGlobal(env *lab.Env, d time.Duration) ([]rlGlobalCell, error) {
	limit := ratelimit.Limit{Events: 100, Per: time.Second, Burst: 10}
	const offered = 200.0
	var out []rlGlobalCell
	for si, split := range rlSplits {
		for _, dep := range rlDeploys {
			var e sim.Engine
			clock := e.Clock()
			lims := make([]ratelimit.Limiter, rlInstances)
			for i := range lims {
				l := limit
				if dep.divide {
					l.Events /= rlInstances
					l.Burst = max(l.Burst/rlInstances, 1)
				}
				if dep.global && i > 0 {
					lims[i] = lims[0]
					continue
				}
				lim, err := ratelimit.NewGCRA(l)
				if err != nil {
					return nil, err
				}
				lims[i] = lim
			}
			admitted := 0
			for i, share := range split.shares {
				gen, err := sim.NewPoisson(env.Rand(uint64(100+10*si+i)), offered*share)
				if err != nil {
					return nil, err
				}
				var next func()
				next = func() {
					if dd, _ := lims[i].AllowN(clock(), 1); dd.Allowed {
						admitted++
					}
					e.Schedule(gen.Next(), next)
				}
				e.Schedule(gen.Next(), next)
			}
			if err := e.Run(d); err != nil {
				return nil, err
			}
			out = append(out, rlGlobalCell{split.name, dep.name, float64(admitted) / (float64(limit.Events) * d.Seconds())})
		}
	}
	return out, nil
}

func runRateLimitLocalVsGlobal(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	d := time.Duration(env.Scale(300, 30)) * time.Second
	cells, err := simulateLocalVsGlobal(env, d)
	if err != nil {
		return nil, err
	}
	t := lab.NewTable(fmt.Sprintf("GCRA 100/s across 4 instances, 200/s offered (Poisson), %v of virtual time", d),
		"traffic split", "deployment", "admitted / global limit")
	get := map[string]float64{}
	for _, c := range cells {
		t.AddRow(c.split, c.deploy, c.ratio)
		get[c.split+"|"+c.deploy] = c.ratio
	}
	b, s := rlSplits[0].name, rlSplits[1].name
	verdict, reason := rlLocalVsGlobalVerdict(get)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Notes: []string{
		fmt.Sprintf("Per-instance limits set to the global figure over-admit: %.2f× the limit with balanced traffic (each instance sees only 50/s, under its own 100/s) and %.2f× when skewed — up to N× in general.", get[b+"|"+rlDeploys[0].name], get[s+"|"+rlDeploys[0].name]),
		fmt.Sprintf("Dividing the limit by N fixes balanced traffic (%.2f×) but under-admits skewed traffic (%.2f×): the busy instance is capped at 25/s while the quiet ones waste theirs.", get[b+"|"+rlDeploys[1].name], get[s+"|"+rlDeploys[1].name]),
		fmt.Sprintf("One shared limit admits the limit in both cases (%.2f×, %.2f×). This is modelled in memory with zero latency; ratelimit-redis-global measures the real thing through Redis.", get[b+"|"+rlDeploys[2].name], get[s+"|"+rlDeploys[2].name]),
	}}, ctx.Err()
}

// rlLocalVsGlobalVerdict judges "API gateway: centralized routing and
// throttling" by the admitted rate of one shared limit against
// per-instance ones, with balanced and skewed traffic.
func rlLocalVsGlobalVerdict(ratio map[string]float64) (lab.Verdict, string) {
	b, s := rlSplits[0].name, rlSplits[1].name
	local, divided, global := rlDeploys[0].name, rlDeploys[1].name, rlDeploys[2].name
	holds := func(r float64) bool { return math.Abs(r-1) <= 0.05 }
	numbers := fmt.Sprintf("one shared limit admits %.2f× and %.2f× the limit with balanced and skewed traffic, per-instance limits %.2f× and %.2f× (divided by the instance count, %.2f× and %.2f×)",
		ratio[b+"|"+global], ratio[s+"|"+global], ratio[b+"|"+local], ratio[s+"|"+local], ratio[b+"|"+divided], ratio[s+"|"+divided])
	centralHolds := holds(ratio[b+"|"+global]) && holds(ratio[s+"|"+global])
	localFails := !holds(ratio[s+"|"+local]) && !holds(ratio[s+"|"+divided])
	return lab.Judge(centralHolds && localFails, "Only centralized throttling holds the limit: "+numbers+".", lab.Nuance, "Centralized throttling is not the only way to hold the limit here: "+numbers+".")
}

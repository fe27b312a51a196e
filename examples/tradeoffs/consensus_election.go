package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

var consensusElectionExperiment = lab.Experiment{
	Name:      "consensus-election",
	Group:     "consensus",
	Title:     "Raft failover time against the heartbeat/election timeout",
	Section:   "Distributed Systems → Distributed Consensus",
	Guide:     "Leader Election: Timeout-based election, majority voting; Failure Handling: Automatic failover",
	WallClock: true,
	Run:       runConsensusElection,
}

type electionPoint struct {
	heartbeat time.Duration
	nodes     int
	detector  bool            // Timing.FastFailover
	trials    []time.Duration // sorted
}

func consensusElectionRun(ctx context.Context, env *lab.Env) ([]electionPoint, error) {
	hbs := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	sizes := []int{3, 5}
	if env.Quick {
		hbs, sizes = hbs[:2], sizes[:1]
	}
	trials := env.Scale(20, 5)
	type setup struct {
		hb       time.Duration
		n        int
		detector bool
	}
	var setups []setup
	for _, hb := range hbs {
		for _, n := range sizes {
			if n > 3 && hb > 100*time.Millisecond {
				continue // keeps the full run near a minute and a half
			}
			setups = append(setups, setup{hb, n, false}, setup{hb, n, true})
		}
	}
	bar := env.Progress(int64(len(setups)*trials), "failovers")
	defer bar.Done()
	var out []electionPoint
	for _, s := range setups {
		t := consensus.Timing{HeartbeatTimeout: s.hb, ElectionTimeout: s.hb, LeaderLeaseTimeout: s.hb, CommitTimeout: 5 * time.Millisecond, FastFailover: s.detector}
		c, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: s.n, Node: consensus.Options{Timing: t}})
		if err != nil {
			return nil, err
		}
		p := electionPoint{heartbeat: s.hb, nodes: s.n, detector: s.detector}
		for range trials {
			d, err := c.Failover(ctx)
			if err != nil {
				_ = c.Close(context.Background())
				return nil, err
			}
			p.trials = append(p.trials, d)
			bar.Add(1)
		}
		if err := c.Close(context.Background()); err != nil {
			return nil, err
		}
		slices.Sort(p.trials)
		out = append(out, p)
	}
	return out, nil
}

func runConsensusElection(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	points, err := consensusElectionRun(ctx, env)
	if err != nil {
		return nil, err
	}
	tb := lab.NewTable("failover: leader isolated → new leader commits a write", "heartbeat timeout", "nodes", "failure detector", "trials", "min", "p50", "p99", "max", "p50 / timeout", "p99 / timeout")
	ch := &lab.Chart{Title: "failover time vs heartbeat timeout (3 nodes)", XLabel: "heartbeat = election timeout (ms)", YLabel: "failover (ms)"}
	series := map[bool][2]*lab.Series{
		false: {{Name: "p50, raft alone"}, {Name: "p99, raft alone"}},
		true:  {{Name: "p50, failure detector"}, {Name: "p99, failure detector"}},
	}
	lo, hi := lab.Series{Name: "1× timeout (floor)", Dashed: true}, lab.Series{Name: "3× timeout (goal for p99)", Dashed: true}
	for _, p := range points {
		p50, p99 := percentile(p.trials, 0.5), percentile(p.trials, 0.99)
		detector := "off"
		if p.detector {
			detector = "on"
		}
		tb.AddRow(p.heartbeat, p.nodes, detector, len(p.trials), p.trials[0], p50, p99, p.trials[len(p.trials)-1],
			float64(p50)/float64(p.heartbeat), float64(p99)/float64(p.heartbeat))
		if p.nodes == 3 {
			x := ms(p.heartbeat)
			s := series[p.detector]
			s[0].X, s[0].Y = append(s[0].X, x), append(s[0].Y, ms(p50))
			s[1].X, s[1].Y = append(s[1].X, x), append(s[1].Y, ms(p99))
			if p.detector {
				lo.X, lo.Y = append(lo.X, x), append(lo.Y, x)
				hi.X, hi.Y = append(hi.X, x), append(hi.Y, 3*x)
			}
		}
	}
	ch.Series = []lab.Series{*series[false][0], *series[false][1], *series[true][0], *series[true][1], lo, hi}
	verdict, reason := consensusElectionVerdict(points)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{tb}, Charts: []*lab.Chart{ch}, Notes: []string{
		"Failover scales with the timeout, as the guide's 'timeout-based election' implies: a follower must hear nothing for a full heartbeat timeout before it campaigns, so no failover is faster than 1× the timeout.",
		"Raft alone (detector off): hashicorp/raft re-arms its check at a random point in [T, 2T), so detection alone can take up to 3T after the last heartbeat; with two surviving voters the first to time out is refused by the other, which still believes in the old leader, and near-simultaneous candidates split the vote; either costs another election timeout.",
		"Failure detector on (consensus.Timing.FastFailover, part of the LAN preset): each voting follower campaigns once the leader has been silent for T plus rank × T/4 (rank: its place by id among the surviving voters), so followers act one after another, never together; the first drops its belief in the old leader and the one that completes a quorum wins at about T + (q−1)·T/4 after the last heartbeat, with little spread.",
		"Agreement with the reference: hashicorp/raft's defaults (1 s timeouts, no detector) fail over in about 2 s at p50 on a 3-node cluster; the table's raft-alone p50/timeout ratio (about 1.5–2.5) gives the same ~1.5–2.5 s for a 1 s timeout (BenchmarkNode_Failover/timing=default measures it directly).",
		"The goal for the LAN preset (50 ms) is p99 under 3× the timeout; BenchmarkNode_Failover measures it with 20+ trials per size, and BenchmarkNode_FailoverUnderLoad with writes in flight, where a follower due to win may lack the last entries and the election waits out one more election timeout.",
		"Wall-clock measurement on in-memory transport: numbers vary with machine load; the ratios are what carries over.",
	}}, nil
}

// consensusElectionVerdict judges "leader election: timeout-based election
// ... failure handling: automatic failover" by failover times against the
// heartbeat timeout: automatic, and never faster than one timeout.
func consensusElectionVerdict(points []electionPoint) (lab.Verdict, string) {
	lo, hi := math.Inf(1), 0.0
	floor := true
	for _, p := range points {
		r := float64(percentile(p.trials, 0.5)) / float64(p.heartbeat)
		lo, hi = min(lo, r), max(hi, r)
		floor = floor && p.trials[0] >= p.heartbeat
	}
	numbers := fmt.Sprintf("every isolated leader was replaced without help, in %.1f× to %.1f× the heartbeat timeout at p50 over %d set-ups", lo, hi, len(points))
	return lab.Judge(floor && hi <= 5,
		"Failover is automatic and set by the timeout: "+numbers+", never faster than one timeout.",
		lab.Nuance, "Failover is automatic but not set by the timeout alone: "+numbers+".")
}

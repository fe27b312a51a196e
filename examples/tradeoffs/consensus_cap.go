package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

var consensusCAPExperiment = lab.Experiment{
	Name:      "consensus-cap",
	Group:     "consensus",
	Title:     "what each side of a partition can do, operation by operation (a CP store with stale reads)",
	Section:   "Distributed Systems → CAP Theorem",
	Guide:     "Trade-offs: Must choose 2 out of 3 properties — CP Systems: Strong consistency, partition tolerance ... Trade-offs: May become unavailable during partitions",
	WallClock: true,
	Run:       runConsensusCAP,
}

type capSide struct {
	name                          string
	nodes                         int
	writes, writesOK              int
	linReads, linReadsOK          int
	staleReads, staleOK, staleOld int
}

type capResult struct {
	sides          []capSide
	minorityLanded int // minority writes visible after healing
}

func consensusCAPRun(ctx context.Context, env *lab.Env) (capResult, error) {
	var res capResult
	c, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 5})
	if err != nil {
		return res, err
	}
	defer c.Close(context.Background())
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		return res, err
	}
	if _, err := leader.Put(ctx, "k", []byte("before")); err != nil {
		return res, err
	}
	// Wait until every node has the value, so stale reads start equal.
	for _, n := range c.Nodes() {
		for {
			kv, err := n.Read(ctx, "k", consensus.Stale)
			if err == nil && string(kv.Value) == "before" {
				break
			}
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The old leader and one follower form the minority.
	minority := []string{leader.ID()}
	var majority []string
	for _, id := range c.IDs() {
		switch {
		case id == leader.ID():
		case len(minority) < 2:
			minority = append(minority, id)
		default:
			majority = append(majority, id)
		}
	}
	c.Partition(minority, majority)
	newLeader, err := c.WaitLeader(ctx, minority...)
	if err != nil {
		return res, err
	}
	ops := env.Scale(40, 10)
	side := func(name string, ids []string) capSide {
		s := capSide{name: name, nodes: len(ids)}
		for i := range ops {
			n := c.Node(ids[i%len(ids)]) // the minority tries both of its nodes
			if name == "majority" {
				n = newLeader
			}
			octx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			s.writes++
			if _, err := n.Put(octx, "k", []byte(name+strconv.Itoa(i))); err == nil {
				s.writesOK++
			}
			s.linReads++
			if _, err := n.Get(octx, "k"); err == nil {
				s.linReadsOK++
			}
			cancel()
			s.staleReads++
			if kv, err := n.Read(ctx, "k", consensus.Stale); err == nil {
				s.staleOK++
				if string(kv.Value) == "before" && name == "minority" {
					s.staleOld++
				}
			}
		}
		return s
	}
	res.sides = append(res.sides, side("minority", minority), side("majority", majority))
	c.Heal()
	l, err := c.WaitLeader(ctx)
	if err != nil {
		return res, err
	}
	kvs, err := l.List(ctx, "", consensus.Linearizable)
	if errors.Is(err, consensus.ErrNotLeader) {
		l, err = c.WaitLeader(ctx)
		if err == nil {
			kvs, err = l.List(ctx, "", consensus.Linearizable)
		}
	}
	if err != nil {
		return res, err
	}
	for _, kv := range kvs {
		if len(kv.Value) >= 8 && string(kv.Value[:8]) == "minority" {
			res.minorityLanded++
		}
	}
	return res, nil
}

func runConsensusCAP(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	r, err := consensusCAPRun(ctx, env)
	if err != nil {
		return nil, err
	}
	tb := lab.NewTable("5 nodes split 2 | 3, the old leader in the minority; the majority's operations go to its new leader", "side", "nodes", "writes ok", "linearizable reads ok", "stale reads ok", "stale reads returning pre-partition data")
	for _, s := range r.sides {
		tb.AddRow(s.name, s.nodes, fmt.Sprintf("%d/%d", s.writesOK, s.writes), fmt.Sprintf("%d/%d", s.linReadsOK, s.linReads),
			fmt.Sprintf("%d/%d", s.staleOK, s.staleReads), s.staleOld)
	}
	verdict, reason := consensusCAPVerdict(r)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{tb}, Notes: []string{
		fmt.Sprintf("A CP system 'may become unavailable during partitions': the minority accepted no write and served no linearizable read, while the majority elected a new leader and kept both. After healing, %d minority writes were found in the store (0 expected: no split brain).", r.minorityLanded),
		"Stale reads stay available on both sides, the AP escape hatch: the minority answers with its pre-partition data, which is exactly the 'may return stale data' trade-off of AP systems. Choosing consistency or availability is per read, not per database.",
		"The deposed leader refuses linearizable reads because each one confirms leadership with a quorum first (the stale-read bug Jepsen found in Consul in 2014 came from skipping that check).",
	}}, nil
}

// consensusCAPVerdict judges "must choose 2 out of 3 properties ... CP
// systems may become unavailable during partitions" by what the minority
// side did, operation by operation: a system that refuses writes and
// linearizable reads there but answers stale reads has not chosen once.
func consensusCAPVerdict(r capResult) (lab.Verdict, string) {
	var minority, majority capSide
	for _, s := range r.sides {
		if s.name == "minority" {
			minority = s
		} else {
			majority = s
		}
	}
	numbers := fmt.Sprintf("during the partition the minority accepted %d/%d writes and %d/%d linearizable reads and answered %d/%d stale reads, while the majority accepted %d/%d writes; %d minority writes survived the healing",
		minority.writesOK, minority.writes, minority.linReadsOK, minority.linReads, minority.staleOK, minority.staleReads, majority.writesOK, majority.writes, r.minorityLanded)
	cp := minority.writesOK == 0 && minority.linReadsOK == 0 && r.minorityLanded == 0
	switch {
	case cp && minority.staleOK > 0:
		return lab.Nuance, "The choice of 2 out of 3 is made per operation, not per system: writes and linearizable reads chose consistency (CP), stale reads availability (AP) — " + numbers + "."
	case cp:
		return lab.Agrees, "A CP system, unavailable in the minority for every operation: " + numbers + "."
	}
	return lab.Refutes, "The minority kept accepting consistent operations, which a partition should forbid: " + numbers + "."
}

package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/shard/replica"
)

var replicaCAPExperiment = lab.Experiment{
	Name:      "replica-cap",
	Group:     "replica",
	Title:     "CAP side by side: the Raft store and the quorum store at ONE, QUORUM and ALL under one partition",
	Section:   "Distributed Systems → CAP Theorem",
	Guide:     "AP Systems: High availability, partition tolerance ... Trade-offs: May return stale or inconsistent data ... CP Systems: Strong consistency, partition tolerance",
	WallClock: true,
	Run:       runReplicaCAP,
}

// capLevelSide is what one side of the partition could do at one level.
type capLevelSide struct {
	writes, writesOK int
	reads, readsOK   int
	stale            int // reads answered without the last acknowledged write
}

// capLevel is the quorum store's behaviour at one level.
type capLevel struct {
	level        replica.Level
	sides        [2]capLevelSide // minority, majority
	conflicts    int             // keys with siblings after healing
	keys         int
	converge     time.Duration // anti-entropy until no replica differs
	convergePass int
}

// replicaCAPRun partitions five nodes 2 | 3, as the consensus-cap
// experiment does the Raft store, with one client on each side, and runs
// rounds of writes and reads at one level, then heals and repairs.
func replicaCAPRun(ctx context.Context, env *lab.Env, lvl replica.Level) (capLevel, error) {
	res := capLevel{level: lvl}
	rc, err := newReplicaCluster(5)
	if err != nil {
		return res, err
	}
	defer rc.close()
	cfg := replica.Config{N: 5, Timeout: 100 * time.Millisecond}
	var clients [2]*replica.Coordinator
	for i, name := range []string{"minority-client", "majority-client"} {
		if clients[i], err = rc.coordinator(name, cfg); err != nil {
			return res, err
		}
	}
	res.keys = env.Scale(20, 4)
	rounds := env.Scale(60, 8)
	opts := replica.Options{Level: lvl}
	for k := range res.keys {
		if _, err := clients[1].Put(ctx, fmt.Sprintf("k%d", k), []byte("before"), replica.Context{}, replica.Options{Level: replica.All}); err != nil {
			return res, err
		}
	}
	rc.net.Partition([]string{"minority-client", "n1", "n2"}, []string{"majority-client", "n3", "n4", "n5"})

	var last string // the last acknowledged write, on either side, as key=value
	for r := range rounds {
		key := fmt.Sprintf("k%d", r%res.keys)
		for side, c := range clients {
			// A read-modify-write: the value read is what this write
			// supersedes.
			var cc replica.Context
			if got, err := c.Get(ctx, key, replica.Options{Level: replica.One}); err == nil {
				cc = got.Context
			}
			v := fmt.Sprintf("%s-%d-side%d", key, r, side)
			res.sides[side].writes++
			if _, err := c.Put(ctx, key, []byte(v), cc, opts); err == nil {
				res.sides[side].writesOK++
				last = key + "=" + v
			} else if !errors.Is(err, replica.ErrUnavailable) {
				return res, err
			}
		}
		for side, c := range clients {
			res.sides[side].reads++
			got, err := c.Get(ctx, key, opts)
			switch {
			case err == nil:
				res.sides[side].readsOK++
				k, v, _ := strings.Cut(last, "=")
				if k == key && !slices.ContainsFunc(got.Values, func(b []byte) bool { return string(b) == v }) {
					res.sides[side].stale++
				}
			case errors.Is(err, replica.ErrUnavailable):
			default:
				return res, err
			}
		}
	}

	rc.net.Heal()
	start := time.Now()
	res.convergePass, err = rc.antiEntropyAll(ctx)
	if err != nil {
		return res, err
	}
	res.converge = time.Since(start)
	for k := range res.keys {
		key := fmt.Sprintf("k%d", k)
		got, err := clients[1].Get(ctx, key, replica.Options{Level: replica.All})
		if err != nil {
			return res, err
		}
		if len(got.Values) > 1 {
			res.conflicts++
		}
	}
	return res, nil
}

func runReplicaCAP(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	tb := lab.NewTable("5 nodes split 2 | 3, one client on each side: availability, stale reads and conflicts",
		"store", "side", "writes ok", "reads ok", "stale reads (missed the last acknowledged write)", "keys in conflict after heal", "convergence after heal")
	var levels []capLevel
	for _, lvl := range []replica.Level{replica.One, replica.Quorum, replica.All} {
		l, err := replicaCAPRun(ctx, env, lvl)
		if err != nil {
			return nil, err
		}
		levels = append(levels, l)
		for side, name := range []string{"minority (2)", "majority (3)"} {
			s := l.sides[side]
			conflicts, converge := "", ""
			if side == 1 {
				conflicts = fmt.Sprintf("%d/%d", l.conflicts, l.keys)
				converge = fmt.Sprintf("%v, %d anti-entropy passes", l.converge.Round(time.Millisecond), l.convergePass)
			}
			tb.AddRow("quorum store, N=5, "+lvl.String(), name, fmt.Sprintf("%d/%d", s.writesOK, s.writes),
				fmt.Sprintf("%d/%d", s.readsOK, s.reads), fmt.Sprintf("%d/%d", s.stale, s.readsOK), conflicts, converge)
		}
	}
	var notes []string
	raft, err := consensusCAPRun(ctx, env)
	if err != nil {
		return nil, err
	}
	for _, s := range raft.sides {
		tb.AddRow("Raft store (consensus), linearizable", s.name, fmt.Sprintf("%d/%d", s.writesOK, s.writes),
			fmt.Sprintf("%d/%d", s.linReadsOK, s.linReads), "0 (linearizable)", fmt.Sprintf("%d minority writes landed", raft.minorityLanded), "")
	}

	one, quorum, all := levels[0], levels[1], levels[2]
	notes = append(notes,
		fmt.Sprintf("At ONE both sides stay available (%.0f%% and %.0f%% of requests answered) and the minority's reads miss the majority's writes (%d of %d stale); after healing, %d of %d keys hold siblings — the AP row of the guide: available, 'may return stale or inconsistent data'.",
			100*one.sides[0].avail(), 100*one.sides[1].avail(), one.sides[0].stale, one.sides[0].readsOK, one.conflicts, one.keys),
		fmt.Sprintf("At QUORUM the minority answers %.0f%% of requests and the majority %.0f%%, as a CP system would. But a refused write is not rolled back: the minority's replicas stored the writes they could not get acknowledged, and after healing %d of %d keys hold them as siblings of the majority's. At ALL neither side can complete a write (%d and %d ok), and the same happens.",
			100*quorum.sides[0].avail(), 100*quorum.sides[1].avail(), quorum.conflicts, quorum.keys, all.sides[0].writesOK, all.sides[1].writesOK),
		fmt.Sprintf("The Raft rows come from the same split as the consensus-cap experiment (five nodes, the old leader in the minority): the minority refuses writes and linearizable reads, the majority elects a leader and serves both, and %d minority writes land after healing.", raft.minorityLanded))
	v, reason := replicaCAPVerdict(one, quorum)
	return &lab.Result{Verdict: v, Reason: reason, Tables: []*lab.Table{tb}, Notes: notes}, nil
}

// avail is the share of a side's requests answered.
func (s capLevelSide) avail() float64 {
	return float64(s.writesOK+s.readsOK) / float64(s.writes+s.reads)
}

// replicaCAPVerdict judges "AP Systems: High availability, partition
// tolerance ... May return stale or inconsistent data" against the store
// at ONE and QUORUM.
func replicaCAPVerdict(one, quorum capLevel) (lab.Verdict, string) {
	apHolds := one.sides[0].avail() == 1 && one.sides[1].avail() == 1 && (one.sides[0].stale > 0 || one.conflicts > 0)
	if !apHolds {
		return lab.Refutes, fmt.Sprintf("at ONE the sides answered %.0f%% and %.0f%% of requests, with %d stale reads and %d keys in conflict: not the available-but-inconsistent AP row",
			100*one.sides[0].avail(), 100*one.sides[1].avail(), one.sides[0].stale, one.conflicts)
	}
	if quorum.sides[0].writesOK == 0 && quorum.sides[1].writesOK > 0 {
		why := fmt.Sprintf("at ONE both sides answer every request and %d of %d keys end in conflict, as the AP row says, but the same store at QUORUM refuses every write on the minority like the CP row — AP or CP is chosen per request", one.conflicts, one.keys)
		if quorum.conflicts > 0 {
			why += fmt.Sprintf(", and it is not CP even then: %d of %d keys still end in conflict from writes the minority refused", quorum.conflicts, quorum.keys)
		}
		return lab.Nuance, why
	}
	return lab.Agrees, fmt.Sprintf("at ONE both sides answer every request, with %d stale reads and %d of %d keys in conflict after healing", one.sides[0].stale, one.conflicts, one.keys)
}

package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

var consensusStaleReadsExperiment = lab.Experiment{
	Name:      "consensus-stale-reads",
	Group:     "consensus",
	Title:     "stale reads: local (stale) reads versus linearizable reads",
	Section:   "Distributed Systems → Consistency Models",
	Guide:     "Strong Consistency: All reads see latest write ... Trade-offs: Higher latency; Eventual Consistency: ... Lower latency, potential stale reads",
	WallClock: true,
	Run:       runConsensusStaleReads,
}

// staleRow is one (phase, read mode) cell of the stale-read experiment.
type staleRow struct {
	mode         consensus.ReadMode
	phase        string
	reads, stale int
	maxLag       int // in versions
	lat          []time.Duration
}

func consensusStaleRun(ctx context.Context, env *lab.Env) ([]staleRow, error) {
	c, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 3})
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		return nil, err
	}
	var followers []*consensus.Node
	for _, n := range c.Nodes() {
		if n != leader {
			followers = append(followers, n)
		}
	}
	writes := env.Scale(200, 40)
	var rows []staleRow
	version := 0
	for _, phase := range []string{"healthy", "follower 20 ms behind", "follower isolated"} {
		switch phase {
		case "follower 20 ms behind":
			c.SetLatency(leader.ID(), followers[0].ID(), 20*time.Millisecond)
		case "follower isolated":
			c.SetLatency(leader.ID(), followers[0].ID(), 0)
			c.Isolate(followers[0].ID())
		}
		stale := staleRow{mode: consensus.Stale, phase: phase}
		lin := staleRow{mode: consensus.Linearizable, phase: phase}
		for range writes {
			version++
			if _, err := leader.Put(ctx, "counter", []byte(strconv.Itoa(version))); err != nil {
				return nil, err
			}
			// The write is acknowledged: every read that starts now must
			// see it to be strongly consistent.
			n := followers[version%len(followers)]
			start := time.Now()
			kv, err := n.Read(ctx, "counter", consensus.Stale)
			stale.lat = append(stale.lat, time.Since(start))
			stale.account(kv, err, version)
			start = time.Now()
			kv, err = leader.Get(ctx, "counter")
			lin.lat = append(lin.lat, time.Since(start))
			lin.account(kv, err, version)
		}
		rows = append(rows, stale, lin)
	}
	c.Heal()
	return rows, nil
}

func (r *staleRow) account(kv consensus.KV, err error, want int) {
	r.reads++
	got := 0
	if err == nil {
		got, _ = strconv.Atoi(string(kv.Value))
	}
	if got < want {
		r.stale++
		r.maxLag = max(r.maxLag, want-got)
	}
}

func runConsensusStaleReads(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	rows, err := consensusStaleRun(ctx, env)
	if err != nil {
		return nil, err
	}
	tb := lab.NewTable("read right after an acknowledged write (3 nodes)", "phase", "mode", "served by", "reads", "stale", "stale %", "max lag (versions)", "read p50", "read p99")
	for _, r := range rows {
		slices.Sort(r.lat)
		by := "a follower (local)"
		if r.mode == consensus.Linearizable {
			by = "the leader (quorum check)"
		}
		tb.AddRow(r.phase, r.mode.String(), by, r.reads, r.stale, 100*float64(r.stale)/float64(r.reads), r.maxLag, percentile(r.lat, 0.5), percentile(r.lat, 0.99))
	}
	verdict, reason := consensusStaleVerdict(rows)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{tb}, Notes: []string{
		"Linearizable reads never returned an older value than an acknowledged write, in every phase: 'all reads see latest write'. They pay a quorum round trip each (read p50 column).",
		"Stale (local) reads on followers missed the write just acknowledged in most reads of this run (stale % column), because a follower learns the new commit index only with the leader's next message; behind a slow link or a partition the lag grows without bound (max lag column) — eventual consistency's 'potential stale reads', in exchange for reads that need no leader and no network.",
		"Read-your-writes for a client that wrote through the leader therefore needs linearizable reads (or reads pinned to the leader); a session that reads from followers sees its own writes only eventually.",
	}}, nil
}

// consensusStaleVerdict judges "strong consistency: all reads see latest
// write ... higher latency; eventual consistency: lower latency, potential
// stale reads" on reads right after an acknowledged write. rows' latencies
// must be sorted.
func consensusStaleVerdict(rows []staleRow) (lab.Verdict, string) {
	var linStale, linReads, staleStale, staleReads int
	var lin, local []time.Duration
	for _, r := range rows {
		if r.mode == consensus.Linearizable {
			linStale, linReads = linStale+r.stale, linReads+r.reads
			lin = append(lin, r.lat...)
		} else {
			staleStale, staleReads = staleStale+r.stale, staleReads+r.reads
			local = append(local, r.lat...)
		}
	}
	slices.Sort(lin)
	slices.Sort(local)
	linP50, localP50 := percentile(lin, 0.5), percentile(local, 0.5)
	numbers := fmt.Sprintf("linearizable reads returned an older value %d times in %d at a median of %v; local reads on followers %d times in %d at a median of %v",
		linStale, linReads, lab.Format(linP50), staleStale, staleReads, lab.Format(localP50))
	return lab.Judge(linStale == 0 && staleStale > 0 && linP50 > localP50,
		"Strong consistency costs latency, eventual consistency returns stale data: "+numbers+".",
		lab.Nuance, "Not both trade-offs showed: "+numbers+".")
}

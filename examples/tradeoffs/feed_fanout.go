package main

import (
	"context"
	"fmt"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

var feedFanoutExperiment = lab.Experiment{
	Name:    "feed-fanout",
	Group:   "feed",
	Title:   "Fan-out on write, on read and hybrid: write amplification and read work against how heavy the follower tail is",
	Section: feedSection,
	Guide:   "Feed Generation: Real-time vs batch processing",
	Run:     runFeedFanout,
}

// feedFanoutRow is one strategy on one graph.
type feedFanoutRow struct {
	s        float64 // Zipf exponent of whom users follow
	strategy string
	hybrid   bool
	cost     feedCost
}

func runFeedFanout(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	users, follows := env.Scale(50_000, 5_000), 20
	exps := []float64{0.6, 0.8, 1.0, 1.2}
	// The hybrid pulls authors followed by a tenth of everyone.
	threshold := int64(users / 10)
	strategies := []fanout.Strategy{fanout.OnWrite, fanout.OnRead, fanout.Hybrid(threshold)}
	var rows []feedFanoutRow
	for i, s := range exps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		g, err := newFeedGraph(env.Rand(uint64(i)), users, follows, s)
		if err != nil {
			return nil, err
		}
		for j, st := range strategies {
			rows = append(rows, feedFanoutRow{s: s, strategy: feedStrategyName(st), hybrid: j == 2, cost: g.cost(st)})
		}
	}
	t := lab.NewTable(fmt.Sprintf("%d users following %d others on average, drawn from a Zipf law; authors and readers uniform", users, follows),
		"Zipf exponent", "strategy", "most followers", "inserts per post", "costliest post's inserts", "lists merged per read", "most lists in one read", "work per post + 65 reads")
	worst := map[string]*lab.Series{}
	var series []string
	for _, r := range rows {
		t.AddRow(r.s, r.strategy, r.cost.maxFollowers, r.cost.amplification, r.cost.worstPost, r.cost.lists, r.cost.maxLists, r.cost.work())
		sr := worst[r.strategy]
		if sr == nil {
			sr = &lab.Series{Name: r.strategy}
			worst[r.strategy] = sr
			series = append(series, r.strategy)
		}
		sr.X, sr.Y = append(sr.X, r.s), append(sr.Y, float64(r.cost.worstPost))
	}
	chart := &lab.Chart{Title: "Timeline inserts of the costliest single post", XLabel: "skew of follows (Zipf exponent)", YLabel: "costliest post (timeline inserts)"}
	for _, name := range series {
		chart.Series = append(chart.Series, *worst[name])
	}
	verdict, reason := feedFanoutVerdict(rows)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Charts: []*lab.Chart{chart},
		Notes: []string{
			"Counts from the feed service's own rules (fanout.Strategy's Push and Pull) applied to every author and reader of a seeded graph: a pushed post costs one sorted-set insert per follower, a home read merges one range per source — the reader's own posts (read-your-writes), the pushed timeline, and each followee pulled at read time. The feed's load test (examples/feed/loadtest) times the same paths on a real Redis.",
			"Every follow is paid once per post (pushed) or once per read (pulled), so with authors and readers uniform the inserts per post and the pulled lists per read add up to the mean follows whatever the strategy. What the strategy chooses is who pays: at 65 reads per post pushing does the least total work, but one celebrity's post costs its whole audience — the post-to-visible delay and the write burst Twitter moved to read time.",
		}}, nil
}

// feedFanoutVerdict judges the trade-off of feed generation: pushing
// makes the costliest post grow with the tail of the follower counts,
// pulling makes every read merge every followee, and the hybrid bounds
// the costliest post by its threshold with reads in between.
func feedFanoutVerdict(rows []feedFanoutRow) (lab.Verdict, string) {
	light, heavy := rows[0].s, rows[0].s
	for _, r := range rows {
		light, heavy = min(light, r.s), max(heavy, r.s)
	}
	pick := func(s float64, f func(feedFanoutRow) bool) feedCost {
		for _, r := range rows {
			if r.s == s && f(r) {
				return r.cost
			}
		}
		return feedCost{}
	}
	isWrite := func(r feedFanoutRow) bool { return r.strategy == feedStrategyName(fanout.OnWrite) }
	isRead := func(r feedFanoutRow) bool { return r.strategy == feedStrategyName(fanout.OnRead) }
	isHybrid := func(r feedFanoutRow) bool { return r.hybrid }
	wl, wh, rh, hh := pick(light, isWrite), pick(heavy, isWrite), pick(heavy, isRead), pick(heavy, isHybrid)
	if wl.worstPost == 0 || rh.lists == 0 {
		return 0, "Not measured."
	}
	numbers := fmt.Sprintf("from Zipf %.1f to %.1f the costliest pushed post grew from %d to %d inserts; at %.1f fan-out on read merged %.1f lists per read against %.1f for fan-out on write, and the hybrid's costliest post was %d inserts with %.1f lists per read",
		light, heavy, wl.worstPost, wh.worstPost, heavy, rh.lists, wh.lists, hh.worstPost, hh.lists)
	return lab.Judge(wh.worstPost >= 2*wl.worstPost && rh.lists >= 5*wh.lists && hh.worstPost*4 <= wh.worstPost && hh.lists < rh.lists,
		"Each pure strategy pays on one side and the hybrid bounds the worst: "+numbers+".", lab.Nuance,
		"The strategies did not separate as the guide's trade-off expects: "+numbers+".")
}

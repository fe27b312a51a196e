package main

import (
	"context"
	"fmt"
	"math"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

var feedThresholdExperiment = lab.Experiment{
	Name:    "feed-threshold",
	Group:   "feed",
	Title:   "The hybrid feed's celebrity threshold swept: write amplification against read work",
	Section: feedSection,
	Guide:   "Feed Generation: Real-time vs batch processing",
	Run:     runFeedThreshold,
}

// feedThresholdRow is one threshold's cost.
type feedThresholdRow struct {
	threshold int64 // 0: fan-out on read, MaxInt64: on write
	cost      feedCost
}

func runFeedThreshold(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	users, follows := env.Scale(50_000, 5_000), 20
	g, err := newFeedGraph(env.Rand(0), users, follows, 1)
	if err != nil {
		return nil, err
	}
	rows := []feedThresholdRow{{threshold: 0}}
	for t := int64(10); t < int64(users); t *= 10 {
		rows = append(rows, feedThresholdRow{threshold: t})
	}
	rows = append(rows, feedThresholdRow{threshold: math.MaxInt64})
	t := lab.NewTable(fmt.Sprintf("%d users following %d others on average (Zipf 1.0); authors and readers uniform", users, follows),
		"threshold (followers)", "strategy", "inserts per post", "costliest post's inserts", "lists merged per read", "most lists in one read", "work per post + 65 reads")
	amp, lists := lab.Series{Name: "inserts per post"}, lab.Series{Name: "lists merged per read"}
	for i := range rows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st := fanout.Strategy{Threshold: rows[i].threshold}
		rows[i].cost = g.cost(st)
		c := rows[i].cost
		t.AddRow(thresholdLabel(rows[i].threshold), feedStrategyName(st), c.amplification, c.worstPost, c.lists, c.maxLists, c.work())
		x := math.Log10(float64(max(1, min(rows[i].threshold, int64(users)*10))))
		amp.X, amp.Y = append(amp.X, x), append(amp.Y, c.amplification)
		lists.X, lists.Y = append(lists.X, x), append(lists.Y, c.lists)
	}
	verdict, reason := feedThresholdVerdict(rows)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t},
		Charts: []*lab.Chart{{Title: "Write and read work against the threshold", XLabel: "push threshold, 0 pulls all (log10 followers)", YLabel: "work per post or read (inserts, lists merged)", Series: []lab.Series{amp, lists}}},
		Notes: []string{
			"A low threshold pulls many authors, so reads merge many lists; a high one pushes nearly everyone, so the costliest post is a celebrity's whole audience. Whom users follow is itself heavy-tailed, so the few accounts above a high threshold still hold a large share of all follows: pulling them moves that share of the work to every read.",
			"The service takes the threshold as -strategy hybrid:N; the feed's load test sweeps it on a real Redis.",
		}}, nil
}

func thresholdLabel(t int64) string {
	switch t {
	case 0:
		return "0"
	case math.MaxInt64:
		return "∞"
	}
	return fmt.Sprint(t)
}

// feedThresholdVerdict tests the hybrid's promise at Twitter's 65 reads
// per post: a threshold that cuts the costliest post to a tenth of pure
// push's while the total work of a post and its reads stays within a
// quarter more than pure push's.
func feedThresholdVerdict(rows []feedThresholdRow) (lab.Verdict, string) {
	var push feedCost
	for _, r := range rows {
		if r.threshold == math.MaxInt64 {
			push = r.cost
		}
	}
	if push.amplification == 0 {
		return 0, "Not measured."
	}
	best := -1
	for i, r := range rows {
		if r.threshold == 0 || r.threshold == math.MaxInt64 || r.cost.worstPost*10 > push.worstPost {
			continue
		}
		if best < 0 || r.cost.work() < rows[best].cost.work() {
			best = i
		}
	}
	if best < 0 {
		return lab.Nuance, fmt.Sprintf("No threshold cut the costliest post from %d inserts to a tenth: on this graph the celebrities are too many to pull.", push.worstPost)
	}
	r := rows[best]
	numbers := fmt.Sprintf("a threshold of %d followers cut the costliest post from %d to %d inserts, for %.0f operations per post and its 65 reads against %.0f when pushing everyone (%.1f lists per read instead of %.1f)",
		r.threshold, push.worstPost, r.cost.worstPost, r.cost.work(), push.work(), r.cost.lists, push.lists)
	return lab.Judge(r.cost.work() <= 1.25*push.work(),
		"The hybrid keeps both sides cheap: "+numbers+".", lab.Nuance,
		"The hybrid bounds the celebrity's post but reads pay for it: "+numbers+"; with 65 reads per post, pushing does the least work and the threshold buys a bounded post-to-visible delay, not less work.")
}

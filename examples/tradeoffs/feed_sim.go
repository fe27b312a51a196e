package main

import (
	"math"
	"math/rand/v2"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/internal/sim"
)

const feedSection = "Real-World System Designs → 3. Social Media Feed"

// feedGraph is a synthetic follow graph as the feed's load test builds
// it: each user follows a number of others uniform in [1, 2·follows−1],
// drawn from a Zipf law over the users, so follower counts are
// heavy-tailed.
type feedGraph struct {
	followers []int   // count per user
	following [][]int // followees per user
}

func newFeedGraph(r *rand.Rand, users, follows int, s float64) (*feedGraph, error) {
	z, err := sim.NewZipf(r, s, uint64(users))
	if err != nil {
		return nil, err
	}
	g := &feedGraph{followers: make([]int, users), following: make([][]int, users)}
	for u := range users {
		k := 1 + r.IntN(2*follows-1)
		seen := map[int]bool{u: true}
		for tries := 0; len(seen) <= k && tries < 20*k; tries++ {
			v := int(z.Next())
			if seen[v] {
				continue
			}
			seen[v] = true
			g.following[u] = append(g.following[u], v)
			g.followers[v]++
		}
	}
	return g, nil
}

// feedCost is what a strategy costs on a graph, authors and readers
// uniform over the users: the service's own write and read paths counted,
// not timed (the feed's load test times them on a real Redis).
type feedCost struct {
	// amplification is the mean timeline inserts per post; worstPost
	// the inserts of the costliest single post (the most-followed pushed
	// author's).
	amplification float64
	worstPost     int
	// lists is the mean number of sorted-set ranges a home read merges
	// (own posts, the pushed timeline, each pulled followee); maxLists the
	// most any user's read merges.
	lists    float64
	maxLists int
	// maxFollowers is the largest follower count of the graph.
	maxFollowers int
}

// cost applies st's push and pull rules to every author and reader of g.
func (g *feedGraph) cost(st fanout.Strategy) feedCost {
	var c feedCost
	var inserts float64
	for _, n := range g.followers {
		if st.Push(int64(n)) {
			inserts += float64(n)
			c.worstPost = max(c.worstPost, n)
		}
		c.maxFollowers = max(c.maxFollowers, n)
	}
	c.amplification = inserts / float64(len(g.followers))
	var lists float64
	for _, fs := range g.following {
		n := 1 // own posts: read-your-writes
		if st.Threshold > 0 {
			n++ // the pushed home timeline
		}
		for _, f := range fs {
			if st.Pull(int64(g.followers[f])) {
				n++
			}
		}
		lists += float64(n)
		c.maxLists = max(c.maxLists, n)
	}
	c.lists = lists / float64(len(g.following))
	return c
}

// feedReadsPerPost is Twitter's 2013 ratio of home-timeline reads to
// tweets (300k/s against 4.6k/s).
const feedReadsPerPost = 65

// work is the work of one post and the 65 reads that go with it, in
// sorted-set operations: inserts plus ranges merged.
func (c feedCost) work() float64 { return c.amplification + feedReadsPerPost*c.lists }

// feedStrategyName names a strategy in the lab's tables.
func feedStrategyName(st fanout.Strategy) string {
	switch st.Threshold {
	case math.MaxInt64:
		return "fan-out on write"
	case 0:
		return "fan-out on read"
	}
	return "hybrid, pull from " + st.String()[len("hybrid:"):] + " followers"
}

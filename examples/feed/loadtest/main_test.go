package main

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// bleve starts its analysis workers when it is imported and never stops
// them; they are not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"))
}

// The short mode of the load test: a small heavy-tailed graph, users'
// data on two redis-servers, Redis cut mid-run, each strategy measured.
// No acknowledged post is lost; fan-out on write inserts one entry per
// follower (the celebrity's post one per follower of u0), fan-out on read
// none, and hybrid pushes ordinary posts but not the celebrity's; searches
// are answered and every probed post becomes searchable; notifications are
// shown, never more than were due.
func TestLoadShort(t *testing.T) {
	db := redistest.New(t)
	rs, err := run(context.Background(), []string{"-redis", db.Addr, "-prefix", db.Prefix, "-users", "300", "-follows", "10",
		"-posts", "30", "-ratio", "20", "-concurrency", "4", "-cut", "200ms", "-strategies", "write,read,hybrid:50",
		"-shards", "2", "-sse", "40", "-search-share", "0.1"}, io.Discard)
	require.NoError(t, err)
	require.Len(t, rs, 3)
	write, read, hybrid := rs[0], rs[1], rs[2]
	for _, r := range rs {
		assert.Zero(t, r.Lost, "%s: every acknowledged post is stored", r.Strategy)
		assert.Positive(t, r.Posts, r.Strategy)
		assert.Positive(t, r.Unavailable+r.Stale, "%s: the cut was seen", r.Strategy)
		assert.Positive(t, r.Read.Count, r.Strategy)
		assert.Positive(t, r.Searches, r.Strategy)
		assert.Zero(t, r.IndexMissed, "%s: every probed post is found by search", r.Strategy)
		assert.Equal(t, int64(r.Posts/5), r.IndexLag.Count, "%s: one index probe per 5 posts", r.Strategy)
		assert.Positive(t, r.NotifyDue, r.Strategy)
		assert.Positive(t, r.NotifyShown, r.Strategy)
		assert.LessOrEqual(t, r.NotifyShown, r.NotifyDue, r.Strategy)
	}
	assert.Greater(t, write.Amplification, 1.0)
	assert.Zero(t, read.Inserts)
	assert.Equal(t, uint64(write.Celebrity.Followers), write.Celebrity.Inserts, "the celebrity's post is pushed to every follower")
	assert.Greater(t, write.Celebrity.Followers, 50)
	assert.Zero(t, hybrid.Celebrity.Inserts, "hybrid pulls the celebrity")
	assert.Zero(t, read.Celebrity.Inserts)
	assert.Positive(t, write.TimelineBytes)
	assert.Zero(t, read.TimelineBytes)
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-users", "2"}, {"-follows", "0"}, {"-zipf", "0"}, {"-strategies", "push"}, {"-cut", "-1s"}, {"-page-ttl", "-1s"}, {"-users", "10", "-follows", "10"}, {"-sse", "-1"}, {"-users", "10", "-follows", "2", "-sse", "11"}, {"-search-share", "1.5"}, {"-shards", "-1"}} {
		_, err := run(context.Background(), args, io.Discard)
		assert.Error(t, err, "%v", args)
	}
}

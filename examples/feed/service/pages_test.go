package service_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/examples/feed/service"
)

// first reads user's first home page of the default size, the page the
// cache keeps.
func (e *env) first(user string) []string {
	e.t.Helper()
	var p service.Page
	e.must(http.StatusOK, user, "GET", "/api/v1/users/"+user+"/home", nil, &p)
	var ids []string
	for _, q := range p.Posts {
		ids = append(ids, q.ID)
	}
	return ids
}

// With the page cache on, a first page is served from it while it is
// current: the reader's own post shows at once, a pushed post once its
// fan-out job has run (each moves a mark the read checks). A pulled post
// moves neither and shows once the entry expires, within PageTTL — the
// staleness the cache allows.
func TestPageCache(t *testing.T) {
	const ttl = 2 * time.Second
	e := newEnv(t, nil, service.Config{Strategy: fanout.Hybrid(2), PageTTL: ttl}, false)
	for _, u := range []string{"alice", "bob", "celeb", "x"} {
		e.user(u)
	}
	e.follow("alice", "bob")
	e.follow("alice", "celeb")
	e.follow("x", "celeb") // celeb has 2 followers: pulled
	assert.Empty(t, e.first("alice"))
	assert.Empty(t, e.first("alice"))
	require.Equal(t, uint64(1), e.svc.Stats().PageHits, "the second read is a hit")

	own := e.post("alice", "mine")
	assert.Equal(t, []string{own.ID}, e.first("alice"), "read-your-writes through the cache")

	pushed := e.post("bob", "pushed")
	eventually(t, func() bool { return slices.Contains(e.first("alice"), pushed.ID) }, "the pushed post shows on alice's page")

	e.first("alice")     // cache the page again
	cached := time.Now() // the entry was written before now: it expires before cached+ttl
	pulled := e.post("celeb", "pulled")
	if got := e.first("alice"); time.Since(cached) < ttl {
		assert.NotContains(t, got, pulled.ID, "a pulled post waits for the entry to expire")
	}
	// The staleness is bounded by PageTTL: the first read after it shows
	// the post, however slowly the reads before it ran.
	time.Sleep(time.Until(cached.Add(ttl + 10*time.Millisecond)))
	assert.Contains(t, e.first("alice"), pulled.ID, "the pulled post shows once PageTTL has passed")
}

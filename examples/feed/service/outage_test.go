package service_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// With Redis cut, a user whose home page this instance served before gets
// that page again, marked stale; every other request is a 503
// problem+json with Retry-After, and the breaker opens rather than let
// each request wait for its timeout. Once Redis is back, posting works
// again and every post acknowledged before the cut is still there.
func TestRedisCut(t *testing.T) {
	e := newEnv(t, nil, service.Config{Strategy: fanout.OnWrite, RedisTimeout: 200 * time.Millisecond, BreakerOpen: 100 * time.Millisecond}, true)
	e.user("alice")
	e.user("bob")
	e.user("carol")
	e.follow("bob", "alice")
	var acked []string
	for i := range 3 {
		acked = append(acked, e.post("alice", fmt.Sprint(i)).ID)
	}
	e.settle(3)
	before := e.home("bob", 20)
	require.Len(t, before, 3)

	e.proxy.Cut()
	var page service.Page
	e.must(http.StatusOK, "bob", "GET", "/api/v1/users/bob/home", nil, &page)
	assert.True(t, page.Stale, "bob's last page, marked stale")
	assert.Len(t, page.Posts, 3)
	for _, c := range []struct{ user, method, path string }{
		{"alice", "POST", "/api/v1/posts"},
		{"carol", "GET", "/api/v1/users/carol/home"},
		{"carol", "GET", "/api/v1/users/carol/home?cursor=" + page.NextCursor + "1"},
	} {
		code, b, h := e.do(c.user, c.method, c.path, service.NewPost{Text: "during the cut"})
		require.Equal(t, http.StatusServiceUnavailable, code, "%s %s: %s", c.method, c.path, b)
		assert.Equal(t, "application/problem+json", h.Get("Content-Type"))
		assert.NotEmpty(t, h.Get("Retry-After"))
		var p httpsec.Problem
		require.NoError(t, json.Unmarshal(b, &p))
		assert.Equal(t, "unavailable", p.Code)
	}
	assert.Equal(t, "open", e.svc.Stats().Breaker.String())
	assert.Positive(t, e.svc.Stats().StaleReads)

	e.proxy.Restore()
	var p service.Post
	eventually(t, func() bool {
		code, b, _ := e.do("alice", "POST", "/api/v1/posts", service.NewPost{Text: "after"})
		return code == http.StatusCreated && json.Unmarshal(b, &p) == nil
	}, "alice posts again")
	acked = append(acked, p.ID)
	var mine service.Page
	e.must(http.StatusOK, "alice", "GET", "/api/v1/users/alice/posts", nil, &mine)
	var got []string
	for _, q := range mine.Posts {
		got = append(got, q.ID)
	}
	assert.ElementsMatch(t, acked, got, "no acknowledged post is lost")
	eventually(t, func() bool { return len(e.home("bob", 20)) == 4 }, "bob sees the post made after the cut")
}

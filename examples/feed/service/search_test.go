package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// search returns the IDs of a search page and its next cursor.
func (e *env) search(q, cursor string, limit int) ([]string, string, uint64) {
	e.t.Helper()
	v := url.Values{"q": {q}, "limit": {itoa(limit)}}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	var p service.SearchPage
	e.must(http.StatusOK, "alice", "GET", "/api/v1/search?"+v.Encode(), nil, &p)
	var ids []string
	for _, post := range p.Posts {
		ids = append(ids, post.ID)
	}
	return ids, p.NextCursor, p.Total
}

// Posts are found by their words once the indexer has read them from the
// post stream; results page by cursor; a malformed query is a 400 naming
// it. A new instance on the same index directory resumes where the last
// one stopped.
func TestSearch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	e := newEnv(t, nil, service.Config{SearchDir: dir}, false)
	e.user("alice")
	e.user("bob")
	var redis []string
	for _, text := range []string{"redis sorted sets for timelines", "fan-out on write", "redis streams for fan-out jobs", "lunch"} {
		p := e.post("bob", text)
		if text != "lunch" && text != "fan-out on write" {
			redis = append(redis, p.ID)
		}
	}
	eventually(t, func() bool { ids, _, _ := e.search("redis", "", 10); return len(ids) == 2 }, "both redis posts indexed")
	ids, _, total := e.search("redis", "", 10)
	assert.ElementsMatch(t, redis, ids)
	assert.Equal(t, uint64(2), total)
	first, next, _ := e.search("redis", "", 1)
	require.Len(t, first, 1)
	require.Equal(t, "1", next)
	second, next, _ := e.search("redis", next, 1)
	assert.ElementsMatch(t, redis, append(first, second...))
	assert.Empty(t, next)
	ids, _, _ = e.search("+redis +jobs", "", 10)
	assert.Len(t, ids, 1)
	ids, _, _ = e.search("author:bob lunch", "", 10)
	assert.NotEmpty(t, ids)

	for _, c := range []struct{ q, detail string }{{"", "want one query"}, {`"unclosed`, "unterminated quote"}, {"a:>", "syntax error"}, {"redis", ""}} {
		path := "/api/v1/search?q=" + url.QueryEscape(c.q)
		if c.q == "redis" {
			path += "&cursor=x"
		}
		code, b, _ := e.do("alice", "GET", path, nil)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", c.q, b)
		var p httpsec.Problem
		require.NoError(t, json.Unmarshal(b, &p))
		assert.Contains(t, p.Detail, c.detail)
	}
}

// Searches run in a bulkhead: with its one slot taken, a search is
// answered 503 with Retry-After at once, and served again once the slot
// is free; a search cut by SearchTimeout is a 503 too. Timelines are not
// behind it.
func TestSearchBulkheadAndTimeout(t *testing.T) {
	e := newEnv(t, nil, service.Config{SearchDir: filepath.Join(t.TempDir(), "index"), SearchConcurrency: 1}, false)
	e.user("alice")
	e.post("alice", "redis bulkheads")
	eventually(t, func() bool { ids, _, _ := e.search("bulkheads", "", 10); return len(ids) == 1 }, "the post indexed")

	slot, err := service.SearchBulkhead(e.svc).Acquire(context.Background())
	require.NoError(t, err)
	code, b, h := e.do("alice", "GET", "/api/v1/search?q=bulkheads", nil)
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", b)
	assert.Equal(t, "1", h.Get("Retry-After"))
	var p httpsec.Problem
	require.NoError(t, json.Unmarshal(b, &p))
	assert.Equal(t, "search_busy", p.Code)
	code, b, _ = e.do("alice", "GET", "/api/v1/users/alice/home", nil)
	assert.Equal(t, http.StatusOK, code, "timelines are not behind the search bulkhead: %s", b)
	slot.Release()
	ids, _, _ := e.search("bulkheads", "", 10)
	assert.Len(t, ids, 1)

	cut := newEnv(t, nil, service.Config{SearchDir: filepath.Join(t.TempDir(), "index"), SearchTimeout: time.Nanosecond}, false)
	cut.user("bob")
	code, b, _ = cut.do("bob", "GET", "/api/v1/search?q=anything", nil)
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", b)
	require.NoError(t, json.Unmarshal(b, &p))
	assert.Equal(t, "search_busy", p.Code)
}

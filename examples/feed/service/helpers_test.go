package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

// bleve starts its analysis workers when it is imported and never stops
// them; they are not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"))
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

// env is one feed instance over a test's Redis keys, behind an
// httptest server.
type env struct {
	t      testing.TB
	db     *redistest.DB
	proxy  *tcpproxy.Proxy // between the service and Redis, when asked for
	tokens *service.Tokens
	svc    *service.Service
	url    string
}

// newEnv starts an instance configured by cfg (Redis, Prefix and
// Authenticate filled in) on db, or on a fresh single-node DB if db is
// nil. With cut set, it reaches Redis through a proxy the test can cut.
func newEnv(t testing.TB, db *redistest.DB, cfg service.Config, cut bool) *env {
	t.Helper()
	if db == nil {
		db = redistest.New(t)
	}
	e := &env{t: t, db: db}
	rdb := db.Client
	if cut {
		p, err := tcpproxy.New(db.Addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		e.proxy = p
		c := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
		t.Cleanup(func() { _ = c.Close() })
		rdb = c
	}
	var err error
	e.tokens, err = service.NewTokens(testKey)
	require.NoError(t, err)
	cfg.Redis, cfg.Prefix, cfg.Authenticate = rdb, db.Prefix, e.tokens.User
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.WriteLimit.Events == 0 {
		cfg.WriteLimit.Events, cfg.WriteLimit.Per, cfg.WriteLimit.Burst = 10_000, time.Second, 10_000
	}
	e.svc, err = service.New(context.Background(), cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(e.svc.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, e.svc.Close(ctx))
	})
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// do sends a request as user ("" for none) and returns the status and
// body.
func (e *env) do(user, method, path string, body any, hdr ...string) (int, []byte, http.Header) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(e.t, err)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	require.NoError(e.t, err)
	if user != "" {
		tok, err := e.tokens.Issue(user, time.Hour)
		require.NoError(e.t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, b, resp.Header
}

// must sends a request that must answer want, and decodes its body into
// out (if not nil).
func (e *env) must(want int, user, method, path string, body, out any) {
	e.t.Helper()
	code, b, _ := e.do(user, method, path, body)
	require.Equal(e.t, want, code, "%s %s: %s", method, path, b)
	if out != nil {
		require.NoError(e.t, json.Unmarshal(b, out))
	}
}

func (e *env) user(id string) {
	e.t.Helper()
	e.must(http.StatusCreated, id, "POST", "/api/v1/users", service.NewUser{ID: id, Name: "User " + id}, nil)
}

func (e *env) follow(a, b string) {
	e.t.Helper()
	e.must(http.StatusNoContent, a, "PUT", "/api/v1/users/"+a+"/following/"+b, nil, nil)
}

func (e *env) post(author, text string) service.Post {
	e.t.Helper()
	var p service.Post
	e.must(http.StatusCreated, author, "POST", "/api/v1/posts", service.NewPost{Text: text}, &p)
	return p
}

// home returns the IDs of user's whole home timeline, read in pages of
// limit.
func (e *env) home(user string, limit int) []string {
	e.t.Helper()
	var ids []string
	cursor := ""
	for range 1000 {
		var p service.Page
		path := "/api/v1/users/" + user + "/home?limit=" + itoa(limit)
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		e.must(http.StatusOK, user, "GET", path, nil, &p)
		for _, post := range p.Posts {
			ids = append(ids, post.ID)
		}
		if p.NextCursor == "" {
			return ids
		}
		cursor = p.NextCursor
	}
	e.t.Fatal("home timeline does not end")
	return nil
}

// settle waits until every fan-out job queued so far has run.
func (e *env) settle(jobs uint64) {
	e.t.Helper()
	eventually(e.t, func() bool { return e.svc.Stats().FanOutJobs >= jobs }, "%d fan-out jobs run", jobs)
}

// eventually polls cond every few milliseconds for up to 10 s.
func eventually(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func limit(perSecond, burst int) ratelimit.Limit {
	return ratelimit.Limit{Events: perSecond, Per: time.Second, Burst: burst}
}

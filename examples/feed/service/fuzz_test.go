package service_test

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/blob"
)

// Whatever a client sends to the HTTP API — any method, route, query,
// content type and body — the service answers without a 5xx, and every
// refusal of an /api/v1 route is problem+json. The seeds are the cases of
// TestBadInput; `go test` runs them, `go test -fuzz` explores.
func FuzzHTTPRequest(f *testing.F) {
	st, err := blob.New(f.TempDir(), blob.Options{MaxBytes: 4 << 10})
	require.NoError(f, err)
	e := newEnv(f, nil, service.Config{Media: st, SearchDir: filepath.Join(f.TempDir(), "index"), PageTTL: time.Minute}, false)
	e.user("alice")
	e.user("bob")
	seeds := []struct{ method, path, ctype, body string }{
		{"POST", "/api/v1/posts", "application/json", `{"text":"hello @bob"}`},
		{"POST", "/api/v1/posts", "application/json", `{"text":"  "}`},
		{"POST", "/api/v1/posts", "application/json", `{"text":"x","media":["sha256:00"]}`},
		{"POST", "/api/v1/posts", "application/json", `{"text":`},
		{"POST", "/api/v1/posts", "text/plain", `hello`},
		{"POST", "/api/v1/users", "application/json", `{"id":"alice","name":"A"}`},
		{"PUT", "/api/v1/users/alice/following/alice", "", ``},
		{"PUT", "/api/v1/users/alice/following/bob", "", ``},
		{"DELETE", "/api/v1/users/alice/following/nobody", "", ``},
		{"GET", "/api/v1/users/alice/home?cursor=abc&limit=0", "", ``},
		{"GET", "/api/v1/users/alice/home?cursor=1&limit=100", "", ``},
		{"GET", "/api/v1/users/bob/posts?cursor=99999999999999999999", "", ``},
		{"GET", "/api/v1/posts/1-alice", "", ``},
		{"GET", "/api/v1/search?q=%22unclosed&limit=5", "", ``},
		{"GET", "/api/v1/search?q=redis&cursor=20", "", ``},
		{"PUT", "/api/v1/posts/1-alice/like", "", ``},
		{"POST", "/api/v1/media", "image/png", "\x89PNG\r\n\x1a\n"},
		{"GET", "/api/v1/posts/-1-alice", "", ``},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ctype, []byte(s.body))
	}
	tok, err := e.tokens.Issue("alice", time.Hour)
	require.NoError(f, err)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.Fuzz(func(t *testing.T, method, path, ctype string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			t.Skip()
		}
		req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
		if err != nil || strings.HasSuffix(req.URL.Path, "/events") {
			t.Skip() // a stream stays open by design; TestEvents tests it
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Skip() // a request the client library refuses to send
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Less(t, resp.StatusCode, 500, "%s %s: %s", method, path, b)
		if resp.StatusCode >= 400 && strings.HasPrefix(req.URL.Path, "/api/v1/") && resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), "%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	})
}

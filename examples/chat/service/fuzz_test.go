package service_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
)

// Whatever a client sends to the HTTP API — any method, route, content
// type and body — the gateway answers without a 5xx, and every refusal of
// an /api/v1 route is problem+json. The seeds are the bad-input cases of
// TestBadRequestsHTTP; `go test` runs them, `go test -fuzz` explores.
func FuzzHTTPRequest(f *testing.F) {
	e := newEnv(f, 1, service.Config{MaxBody: 512}, false)
	seeds := []struct{ method, path, ctype, body string }{
		{"POST", "/api/v1/messages", "application/json", `{"conv":"d:alice:bob","id":"m1","body":"hi"}`},
		{"POST", "/api/v1/messages", "application/json", `{"conv":"d:alice:bob","id":"m1",`},
		{"POST", "/api/v1/messages", "application/json", `{"conv":"d:alice:bob","id":"m1","from":"bob","body":"x"}`},
		{"POST", "/api/v1/messages", "application/json", `{"conv":"g:nowhere","id":"m2","body":"x"}`},
		{"POST", "/api/v1/messages", "text/plain", `hello`},
		{"POST", "/api/v1/acks", "application/json", `{"acked":{"d:alice:bob":99}}`},
		{"POST", "/api/v1/groups", "application/json", `{"id":"team","members":["carol"]}`},
		{"POST", "/api/v1/groups/team/members", "application/json", `{"user":""}`},
		{"GET", "/api/v1/groups/nowhere", "", ``},
		{"GET", "/api/v1/conversations/d:alice:bob/messages?before=-1", "", ``},
		{"GET", "/api/v1/conversations/d:bob:carol/messages", "", ``},
		{"PUT", "/api/v1/keys", "application/json", `{"key":"not base64"}`},
		{"GET", "/api/v1/keys/nobody", "", ``},
		{"POST", "/api/v1/media", "image/png", "\x89PNG\r\n\x1a\n"},
		{"POST", "/api/v1/media", "application/x-msdownload", "MZ"},
		{"GET", "/api/v1/media/sha256:zz", "", ``},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ctype, []byte(s.body))
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	token := e.token("alice")
	f.Fuzz(func(t *testing.T, method, path, ctype string, body []byte) {
		// The streams (WebSocket, SSE) stay open by design: their frames
		// have tests of their own.
		if !strings.HasPrefix(path, "/") {
			t.Skip()
		}
		req, err := http.NewRequest(method, e.urls[0]+path, bytes.NewReader(body))
		if err != nil || strings.Contains(req.URL.Path, "/ws") || strings.Contains(req.URL.Path, "/events") {
			t.Skip()
		}
		req.Header.Set("Authorization", "Bearer "+token)
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

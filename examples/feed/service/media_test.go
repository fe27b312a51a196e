package service_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/blob"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// An attachment is uploaded to the blob store, referenced by a post and
// served as a CDN origin serves it; a post may only reference a stored
// blob, and uploads over the limit or of other types are refused.
func TestMedia(t *testing.T) {
	st, err := blob.New(t.TempDir(), blob.Options{MaxBytes: 1 << 10})
	require.NoError(t, err)
	e := newEnv(t, nil, service.Config{Media: st}, false)
	e.user("alice")
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 200)...)
	upload := func(typ string, body []byte) (int, []byte) {
		req, err := http.NewRequest("POST", e.url+"/api/v1/media", bytes.NewReader(body))
		require.NoError(t, err)
		tok, _ := e.tokens.Issue("alice", time.Hour)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", typ)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	code, b := upload("image/png", png)
	require.Equal(t, http.StatusCreated, code, "%s", b)
	var ref blob.Ref
	require.NoError(t, json.Unmarshal(b, &ref))
	var p service.Post
	e.must(http.StatusCreated, "alice", "POST", "/api/v1/posts", service.NewPost{Text: "look", Media: []string{ref.Ref}}, &p)
	assert.Equal(t, []string{ref.Ref}, p.Media)

	code, body, h := e.do("", "GET", "/api/v1/media/"+ref.Ref, nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, png, body)
	assert.Equal(t, `"`+ref.Ref+`"`, h.Get("ETag"))
	assert.Equal(t, blob.CacheControl, h.Get("Cache-Control"))
	code, body, _ = e.do("", "GET", "/api/v1/media/"+ref.Ref, nil, "If-None-Match", h.Get("ETag"))
	assert.Equal(t, http.StatusNotModified, code)
	assert.Empty(t, body)

	for _, c := range []struct {
		name, typ string
		body      []byte
		status    int
		code      string
	}{
		{"over the limit", "application/octet-stream", bytes.Repeat([]byte{1}, 1<<10+1), 413, "too_large"},
		{"not an accepted type", "text/html", []byte("<p>"), 415, "unsupported"},
		{"declared PNG, is text", "image/png", []byte("hello"), 415, "unsupported"},
		{"empty", "application/octet-stream", nil, 400, "empty_upload"},
	} {
		code, b := upload(c.typ, c.body)
		require.Equal(t, c.status, code, "%s: %s", c.name, b)
		var p httpsec.Problem
		require.NoError(t, json.Unmarshal(b, &p))
		assert.Equal(t, c.code, p.Code, c.name)
	}
	unstored := "sha256:" + strings.Repeat("b", 64)
	code, b, _ = e.do("alice", "POST", "/api/v1/posts", service.NewPost{Text: "x", Media: []string{unstored}})
	assert.Equal(t, http.StatusBadRequest, code, "%s", b)
	assert.Contains(t, string(b), "not stored")
	code, _, _ = e.do("", "GET", "/api/v1/media/"+unstored, nil)
	assert.Equal(t, http.StatusNotFound, code)
	code, _, _ = e.do("", "GET", "/api/v1/media/sha256:zz", nil)
	assert.Equal(t, http.StatusBadRequest, code)
}

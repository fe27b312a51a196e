package service

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

// badBodies are the request bodies of TestBadInput, the seeds of the fuzz
// tests.
var badBodies = []string{
	"", `{"url":`, `["https://a.b"]`, `{"url":"https://a.b","admin":true}`, `{"url":"https://a.b"} {}`, `{"url":42}`,
	`{}`, `{"url":"javascript:alert(1)"}`, `{"url":"JaVaScRiPt://alert(1)"}`, `{"url":"data:text/html,<script>alert(1)</script>"}`,
	`{"url":"ftp://example.com/f"}`, `{"url":"/just/a/path"}`, `{"url":"//evil.example"}`, `{"url":"https:///path"}`,
	`{"url":"https://bank.example@evil.example/"}`, `{"url":"https://example.com/a b"}`, `{"url":"https://example.com/\u0000"}`,
	`{"url":"https://example.com:99999/"}`, `{"url":"https://a.b","alias":"a/b/c"}`, `{"url":"https://a.b","alias":"café"}`,
	`{"url":"https://a.b","alias":"ab"}`, `{"url":"https://a.b","alias":"Metrics"}`, `{"url":"https://a.b","expires_in":-1}`,
	`{"url":"https://a.b","expires_in":99999999999}`, `{"url":"https://example.com/ok","alias":"fine-alias","expires_in":60,"idempotent":true}`,
}

// FuzzDecodeCreate: whatever the body and content type, decodeCreate
// never panics; it answers a 4xx problem, or a request whose URL and alias
// validate again.
func FuzzDecodeCreate(f *testing.F) {
	for _, b := range badBodies {
		f.Add("application/json", b)
	}
	f.Add("application/x-www-form-urlencoded", "url=https://a.b")
	f.Add("application/json; charset=utf-8", `{"url":"https://a.b"}`)
	f.Add("", `{"url":"https://a.b"}`)
	s := &Service{cfg: Config{MaxURLLength: 2048, MaxBodyBytes: 8 << 10}}
	f.Fuzz(func(t *testing.T, ctype, body string) {
		r := httptest.NewRequest(http.MethodPost, "http://sho.rt/api/v1/urls", strings.NewReader(body))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		req, p := s.decodeCreate(r)
		if p != nil {
			require.GreaterOrEqual(t, p.Status, 400)
			require.Less(t, p.Status, 500)
			require.NotEmpty(t, p.Code)
			return
		}
		_, again := validateURL(req.URL, 2048, nil)
		require.Nil(t, again, "accepted url %q does not validate again", req.URL)
		if req.Alias != "" {
			require.Nil(t, validateAlias(req.Alias))
		}
		require.GreaterOrEqual(t, req.ExpiresIn, int64(0))
	})
}

// FuzzHandler: any method, path, headers and body through the whole
// service — every handler's decoding of its path, headers and body —
// gets an answer below 500, every error is problem+json, and no answer
// redirects anywhere but to a stored link.
func FuzzHandler(f *testing.F) {
	paths := []string{"/api/v1/urls", "/taken", "/api/v1/urls/taken", "/api/v1/urls/taken/stats", "/zzzzzzz", "/a.b.c",
		"/" + strings.Repeat("a", 40), "/api/v1/urls/%3Cscript%3E/stats", "/no/such/path", "/api/v1/admin/backup", "/healthz", "//evil.example/"}
	methods := []string{"GET", "POST", "DELETE", "PUT", "OPTIONS", "HEAD"}
	for i, b := range badBodies {
		f.Add(methods[i%len(methods)], paths[i%len(paths)], "application/json", "", "", b)
	}
	f.Add("DELETE", "/api/v1/urls/taken", "", "Bearer not.a.token", "", "")
	f.Add("GET", "/api/v1/admin/backup", "", "Bearer", "id with space", "")
	f.Add("POST", "/api/v1/urls", "application/json", "", "https://evil.example", `{"url":"https://a.b"}`)

	storage, err := OpenStorage(f.TempDir(), StorageOptions{Shards: 1})
	require.NoError(f, err)
	defer storage.Close()
	s, err := New(context.Background(), storage, Config{Tokens: testTokens, AllowedOrigins: []string{"https://app.example"},
		CreateLimit: ratelimit.Limit{Events: 1_000_000, Per: time.Second, Burst: 1_000_000}, ClickInterval: time.Hour})
	require.NoError(f, err)
	defer func() { require.NoError(f, s.Close(context.Background())) }()
	h := s.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "http://sho.rt/api/v1/urls", strings.NewReader(`{"url":"https://example.com/t","alias":"taken"}`)))
	require.Equal(f, http.StatusCreated, rec.Code, rec.Body.String())

	f.Fuzz(func(t *testing.T, method, path, ctype, auth, origin, body string) {
		u, err := url.ParseRequestURI(path)
		if err != nil || !strings.HasPrefix(path, "/") || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || method == "" || method == "CONNECT" {
			return
		}
		r := httptest.NewRequest(http.MethodGet, "http://sho.rt/", strings.NewReader(body))
		r.Method, r.URL, r.RequestURI = method, u, path
		for k, v := range map[string]string{"Content-Type": ctype, "Authorization": auth, "Origin": origin} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res := rec.Result()
		require.Less(t, res.StatusCode, 500, "%s %s: %s", method, path, rec.Body.String())
		if res.StatusCode >= 400 {
			require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), "%s %s", method, path)
			var p httpsec.Problem
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
			require.Equal(t, res.StatusCode, p.Status)
		}
		if loc := res.Header.Get("Location"); loc != "" && res.StatusCode >= 300 && res.StatusCode < 400 {
			l, err := url.Parse(loc)
			require.NoError(t, err)
			require.True(t, l.Host == "" && !strings.HasPrefix(loc, "//") || loc == "https://example.com/t", "%s %s redirected to %q", method, path, loc)
		}
	})
}

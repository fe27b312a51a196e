package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzAPI: whatever the key, ?level=, X-Context and body of a read or a
// write, the API never panics and never answers 500: bad input is a 400
// (or 404 for a key never written), anything else a success. Seeded with
// the bad-input cases of the walk-through.
func FuzzAPI(f *testing.F) {
	for _, s := range [][5]string{
		{"PUT", "cart", "QUORUM", "", "milk"},
		{"PUT", "cart", "TWO", "", "milk"},
		{"GET", "cart", "one", "", ""},
		{"GET", "never-written", "", "", ""},
		{"PUT", "cart", "ALL", "not a context", "eggs"},
		{"PUT", "cart", "", "eyJrZXkiOiJvdGhlciJ9", "eggs"},
		{"PUT", "cart", "ONE", "", strings.Repeat("x", 2<<20)},
		{"PUT", "", "", "", "v"},
		{"GET", "a%2Fb", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	cfg, err := parse([]string{"-name", "n1", "-http", "127.0.0.1:1", "-peers", "n1=127.0.0.1:1"})
	require.NoError(f, err)
	srv, err := newServer(cfg)
	require.NoError(f, err)
	defer func() { require.NoError(f, srv.close(context.Background())) }()
	h := srv.routes()
	f.Fuzz(func(t *testing.T, method, key, level, cc, body string) {
		if method != "GET" {
			method = "PUT"
		}
		target := "/v1/kv/" + url.PathEscape(key) + "?level=" + url.QueryEscape(level)
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		if cc != "" && !strings.ContainsAny(cc, "\r\n") {
			r.Header.Set("X-Context", cc)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge,
			// net/http's ServeMux sends a path with "." or ".." segments to
			// its clean form: 301 for GET, 307 to keep a PUT a PUT.
			http.StatusMovedPermanently, http.StatusTemporaryRedirect:
		default:
			t.Fatalf("%s %s (X-Context %q, %d-byte body): %d %s", method, target, cc, len(body), rec.Code, rec.Body.String())
		}
	})
}

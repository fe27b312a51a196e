package httpsec_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

// FuzzVerify: no input crashes Verify, and none but a token the issuer
// signed verifies.
func FuzzVerify(f *testing.F) {
	c := &clock{t0}
	tok := newTokens(f, httpsec.TokenOptions{Secret: secret, Now: c.Now})
	good := issue(f, tok, "alice", []string{"user"}, time.Minute)
	for _, s := range []string{good, "", "not-a-token", "a.b.c", "a.b", "....", good + "x", strings.Replace(good, ".", "..", 1),
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJtYWxsb3J5In0.", "Bearer " + good} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := tok.Verify(s)
		if err == nil && (id.Subject != "alice" || len(id.Roles) != 1 || id.Roles[0] != "user") {
			t.Fatalf("%q verified as %+v, which the issuer never signed", s, id)
		}
	})
}

// FuzzMiddleware: whatever the Origin, X-Request-ID, preflight headers and
// body, the middleware answers one of its statuses, every refusal is
// problem+json, and no origin outside the list is ever allowed.
func FuzzMiddleware(f *testing.F) {
	m, err := httpsec.NewMiddleware(httpsec.Options{AllowedOrigins: []string{"https://app.example"}, MaxBodyBytes: 16})
	if err != nil {
		f.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, _ := io.ReadAll(r.Body); len(b) > 16 {
			panic(fmt.Sprintf("the handler got a body of %d bytes past the 16-byte limit", len(b)))
		}
	}))
	for _, s := range [][5]string{
		{"GET", "", "", "", ""},
		{"POST", "https://app.example", "id-1", "", "{}"},
		{"POST", "https://evil.example", "", "", ""},
		{"POST", "null", "", "", ""},
		{"OPTIONS", "https://app.example", "", "PUT", ""},
		{"OPTIONS", "https://app.example", "", "POST", ""},
		{"GET", "http://svc.example", "has space", "", ""},
		{"POST", "", "", "", strings.Repeat("x", 17)},
		{"GET", "https://APP.example:443", "a/b=c", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	f.Fuzz(func(t *testing.T, method, origin, id, preflight, body string) {
		if method != "GET" && method != "POST" && method != "OPTIONS" {
			method = "POST"
		}
		r := httptest.NewRequest(method, "http://svc.example/x", strings.NewReader(body))
		r.Header["Origin"] = []string{origin}
		if origin == "" {
			delete(r.Header, "Origin")
		}
		if id != "" {
			r.Header["X-Request-Id"] = []string{id}
		}
		if preflight != "" {
			r.Header.Set("Access-Control-Request-Method", preflight)
		}
		res := serve(h, r)
		switch res.StatusCode {
		case http.StatusOK, http.StatusNoContent:
		case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
			if res.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("refusal %d is %q", res.StatusCode, res.Header.Get("Content-Type"))
			}
		default:
			t.Fatalf("status %d", res.StatusCode)
		}
		if a := res.Header.Get("Access-Control-Allow-Origin"); a != "" && a != "https://app.example" {
			t.Fatalf("origin %q allowed as %q", origin, a)
		}
	})
}

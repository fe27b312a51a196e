package httpsec_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
)

func newMiddleware(t *testing.T, opts httpsec.Options) *httpsec.Middleware {
	t.Helper()
	m, err := httpsec.NewMiddleware(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHeadersOnEveryResponse(t *testing.T) {
	h := newMiddleware(t, httpsec.Options{}).Handler(ok)
	res := serve(h, httptest.NewRequest(http.MethodGet, "http://svc.example/x", nil))
	want := map[string]string{
		"Content-Security-Policy": httpsec.DefaultContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := res.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("HSTS %q sent over plain HTTP", got)
	}
	// Refusals carry the headers too.
	res = serve(h, httptest.NewRequest(http.MethodPost, "http://svc.example/x", strings.NewReader(strings.Repeat("x", 2<<20))))
	problemOf(t, res, http.StatusRequestEntityTooLarge)
	if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("a refusal lacks the security headers: %v", res.Header)
	}
}

// A page's own policy is kept, with framing still refused; a policy
// allowing framing is refused at construction.
func TestContentSecurityPolicyConfigurable(t *testing.T) {
	const page = "default-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'"
	h := newMiddleware(t, httpsec.Options{ContentSecurityPolicy: page, ReferrerPolicy: "strict-origin-when-cross-origin"}).Handler(ok)
	res := serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	if got, want := res.Header.Get("Content-Security-Policy"), page+"; frame-ancestors 'none'"; got != want {
		t.Errorf("CSP %q, want %q", got, want)
	}
	if got := res.Header.Get("Referrer-Policy"); got != "strict-origin-when-cross-origin" {
		t.Errorf("Referrer-Policy %q", got)
	}
	for _, opts := range []httpsec.Options{
		{ContentSecurityPolicy: "default-src 'self'; frame-ancestors *"},
		{ContentSecurityPolicy: "default-src 'self'\r\nX-Evil: 1"},
		{ReferrerPolicy: "always"},
		{HSTSMaxAge: -1},
		{MaxBodyBytes: -1},
		{AllowedOrigins: []string{"*"}, AllowCredentials: true},
		{AllowedOrigins: []string{"https://app.example/path"}},
		{AllowedOrigins: []string{"https://APP.example"}},
		{AllowedOrigins: []string{"null"}},
		{AllowedOrigins: []string{"ftp://app.example"}},
		{AllowedMethods: []string{"GET, POST"}},
		{AllowedHeaders: []string{""}},
		{TrustedProxies: []netip.Prefix{{}}},
	} {
		if _, err := httpsec.NewMiddleware(opts); !errors.Is(err, httpsec.ErrInvalidConfig) {
			t.Errorf("NewMiddleware(%+v) = %v, want ErrInvalidConfig", opts, err)
		}
	}
}

// HSTS goes only on responses to requests that came over TLS: to the
// server itself, or to a trusted proxy that says so.
func TestHSTSOnlyOverTLS(t *testing.T) {
	m := newMiddleware(t, httpsec.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	srv := httptest.NewTLSServer(m.Handler(ok))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if got := res.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("over TLS: HSTS %q, want max-age=31536000", got)
	}

	for _, c := range []struct {
		peer, proto string
		want        bool
	}{
		{"10.1.2.3:4000", "https", true},
		{"10.1.2.3:4000", "HTTPS", true},
		{"10.1.2.3:4000", "http", false},
		{"192.0.2.1:4000", "https", false}, // not a trusted proxy
	} {
		req := httptest.NewRequest(http.MethodGet, "http://svc.example/", nil)
		req.RemoteAddr = c.peer
		req.Header.Set("X-Forwarded-Proto", c.proto)
		got := serve(m.Handler(ok), req).Header.Get("Strict-Transport-Security") != ""
		if got != c.want {
			t.Errorf("peer %s, X-Forwarded-Proto %s: HSTS sent %v, want %v", c.peer, c.proto, got, c.want)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "https://svc.example/", nil)
	req.TLS = &tls.ConnectionState{}
	if got := serve(newMiddleware(t, httpsec.Options{HSTSMaxAge: 3600e9}).Handler(ok), req).Header.Get("Strict-Transport-Security"); got != "max-age=3600" {
		t.Errorf("HSTS %q, want max-age=3600", got)
	}
}

func TestBodyLimit(t *testing.T) {
	var got []byte
	read := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
	})
	h := newMiddleware(t, httpsec.Options{MaxBodyBytes: 10}).Handler(read)
	srv := httptest.NewServer(h)
	defer srv.Close()

	// At the limit: the handler reads it all.
	res, err := http.Post(srv.URL, "text/plain", strings.NewReader("0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK || string(got) != "0123456789" {
		t.Fatalf("a body at the limit: status %d, handler read %q", res.StatusCode, got)
	}
	// Over it, declared or streamed: 413 naming the limit, the handler
	// never runs.
	got = nil
	for name, body := range map[string]io.Reader{
		"declared": strings.NewReader("0123456789A"),
		"chunked":  io.MultiReader(strings.NewReader("01234"), strings.NewReader("56789A")),
	} {
		res, err := http.Post(srv.URL, "text/plain", body)
		if err != nil {
			t.Fatal(err)
		}
		p := problemOf(t, res, http.StatusRequestEntityTooLarge)
		_ = res.Body.Close()
		if p.Code != "body_too_large" || !strings.Contains(p.Detail, "10 bytes") {
			t.Errorf("%s: problem %+v does not name the limit", name, p)
		}
		if got != nil {
			t.Errorf("%s: the handler ran on an over-limit body", name)
		}
	}
}

func TestCORS(t *testing.T) {
	m := newMiddleware(t, httpsec.Options{
		AllowedOrigins: []string{"https://app.example"}, AllowCredentials: true,
		AllowedMethods: []string{"GET", "POST", "DELETE"},
	})
	h := m.Handler(ok)
	req := func(method, origin string, hdr ...string) *http.Response {
		r := httptest.NewRequest(method, "http://api.example/x", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return serve(h, r)
	}

	t.Run("allowed", func(t *testing.T) {
		res := req(http.MethodPost, "https://app.example")
		if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			res.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "X-Request-ID") {
			t.Errorf("allowed origin: %d %v", res.StatusCode, res.Header)
		}
		if res.Header.Get("Vary") != "Origin" {
			t.Errorf("Vary %q, want Origin", res.Header.Get("Vary"))
		}
		// The default port is the same origin.
		if res := req(http.MethodGet, "https://app.example:443"); res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Errorf("https://app.example:443 not recognised: %v", res.Header)
		}
	})
	t.Run("refused", func(t *testing.T) {
		for _, origin := range []string{"https://evil.example", "http://app.example", "https://app.example.evil.example", "null", "https://app.example/x", "garbage"} {
			res := req(http.MethodPost, origin)
			p := problemOf(t, res, http.StatusForbidden)
			if p.Code != "origin_not_allowed" || !strings.Contains(p.Detail, origin) {
				t.Errorf("origin %q: problem %+v does not name it", origin, p)
			}
			if res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("origin %q: Access-Control-Allow-Origin sent", origin)
			}
		}
	})
	t.Run("same origin and no origin", func(t *testing.T) {
		for _, origin := range []string{"", "http://api.example"} {
			res := req(http.MethodPost, origin)
			if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("origin %q: %d %v", origin, res.StatusCode, res.Header)
			}
		}
	})
	t.Run("preflight", func(t *testing.T) {
		res := req(http.MethodOptions, "https://app.example", "Access-Control-Request-Method", "DELETE", "Access-Control-Request-Headers", "authorization, x-request-id")
		if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Methods") != "GET, POST, DELETE" ||
			!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") || res.Header.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
		}
		p := problemOf(t, req(http.MethodOptions, "https://app.example", "Access-Control-Request-Method", "PUT"), http.StatusForbidden)
		if p.Code != "method_not_allowed" || !strings.Contains(p.Detail, `"PUT"`) {
			t.Errorf("preflight for PUT: %+v", p)
		}
		p = problemOf(t, req(http.MethodOptions, "https://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type, x-secret"), http.StatusForbidden)
		if p.Code != "header_not_allowed" || !strings.Contains(p.Detail, `"x-secret"`) {
			t.Errorf("preflight for x-secret: %+v", p)
		}
		problemOf(t, req(http.MethodOptions, "https://evil.example", "Access-Control-Request-Method", "GET"), http.StatusForbidden)
	})
	t.Run("any origin", func(t *testing.T) {
		res := serve(newMiddleware(t, httpsec.Options{AllowedOrigins: []string{"*"}}).Handler(ok), func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Origin", "https://anyone.example")
			return r
		}())
		if res.Header.Get("Access-Control-Allow-Origin") != "*" || res.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("any origin: %v", res.Header)
		}
	})
}

// Behind a trusted proxy, the service's own origin is the one the client
// used, from X-Forwarded-Proto and -Host.
func TestCORSSameOriginBehindProxy(t *testing.T) {
	h := newMiddleware(t, httpsec.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}).Handler(ok)
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:9000/x", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", "sho.rt")
	r.Header.Set("Origin", "https://sho.rt")
	if res := serve(h, r); res.StatusCode != http.StatusOK {
		t.Errorf("same origin behind the proxy refused: %d", res.StatusCode)
	}
	r.RemoteAddr = "192.0.2.7:5555" // the same headers from anyone else
	problemOf(t, serve(h, r), http.StatusForbidden)
}

func TestRequestID(t *testing.T) {
	var seen string
	h := httpsec.WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = httpsec.RequestID(r.Context())
		if r.Header.Get(httpsec.RequestIDHeader) != seen {
			t.Errorf("request header %q, context %q", r.Header.Get(httpsec.RequestIDHeader), seen)
		}
	}))
	res := serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	if len(seen) < 16 || res.Header.Get(httpsec.RequestIDHeader) != seen {
		t.Errorf("generated id %q, response %q", seen, res.Header.Get(httpsec.RequestIDHeader))
	}
	first := seen
	serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	if seen == first {
		t.Errorf("two requests got the same id %q", seen)
	}

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set(httpsec.RequestIDHeader, "client-id:42")
	if res := serve(h, r); seen != "client-id:42" || res.Header.Get(httpsec.RequestIDHeader) != "client-id:42" {
		t.Errorf("the client's id was not kept: %q, response %q", seen, res.Header.Get(httpsec.RequestIDHeader))
	}
	for _, bad := range [][]string{{"has space"}, {"new\nline"}, {strings.Repeat("a", 129)}, {""}, {"a", "b"}, {"<script>"}} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header[http.CanonicalHeaderKey(httpsec.RequestIDHeader)] = bad
		seen = "untouched"
		p := problemOf(t, serve(h, r), http.StatusBadRequest)
		if p.Code != "invalid_request_id" || seen != "untouched" {
			t.Errorf("id %q: problem %+v, handler saw %q", bad, p, seen)
		}
	}
}

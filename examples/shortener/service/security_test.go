package service

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

// testTokens verifies the admin tokens of the tests.
var testTokens = func() *httpsec.Tokens {
	t, err := httpsec.NewTokens(httpsec.TokenOptions{Issuer: "shortener", Audience: "shortener-admin", Secret: []byte("a test secret of at least 32 bytes")})
	if err != nil {
		panic(err)
	}
	return t
}()

func tokenFor(t *testing.T, subject string, roles ...string) string {
	t.Helper()
	tok, err := testTokens.Issue(subject, roles, time.Hour)
	require.NoError(t, err)
	return tok
}

func adminToken(t *testing.T) string { return tokenFor(t, "ops", AdminRole) }

// logBuffer is a JSON log a test reads while servers write to it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// audits returns the audit records logged so far.
func (l *logBuffer) audits(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), "log line %s", sc.Bytes())
		if rec["msg"] == "audit" {
			out = append(out, rec)
		}
	}
	return out
}

func jsonLogger(l *logBuffer) *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// selfSigned returns a TLS configuration for 127.0.0.1 and a client that
// trusts it.
func selfSigned(t *testing.T) (*tls.Config, *http.Client) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shortener test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Every answer carries the security headers; HSTS only over HTTPS, served
// by the instance itself or by the balancer in front of several.
func TestSecurityHeaders(t *testing.T) {
	c := start(t, ClusterConfig{DataDir: t.TempDir()})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	code := cl.mustCreate("https://example.com/").Code
	for _, r := range []response{cl.do("GET", "/healthz", "", nil), cl.do("GET", "/"+code, "", nil), cl.do("GET", "/zzzzzz", "", nil)} {
		assert.Equal(t, httpsec.DefaultContentSecurityPolicy, r.header.Get("Content-Security-Policy"))
		assert.Equal(t, "DENY", r.header.Get("X-Frame-Options"))
		assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
		assert.Equal(t, "no-referrer", r.header.Get("Referrer-Policy"))
		assert.NotEmpty(t, r.header.Get("X-Request-ID"))
		assert.Empty(t, r.header.Get("Strict-Transport-Security"), "HSTS over plain HTTP")
	}

	for _, instances := range []int{1, 3} {
		t.Run(fmt.Sprint("instances=", instances), func(t *testing.T) {
			cfg, hc := selfSigned(t)
			c := start(t, ClusterConfig{DataDir: t.TempDir(), Instances: instances, TLS: cfg})
			defer stop(t, c)
			require.True(t, strings.HasPrefix(c.URL(), "https://"), c.URL())
			cl := &client{t: t, base: c.URL(), hc: hc}
			link := cl.mustCreate("https://example.com/tls")
			assert.True(t, strings.HasPrefix(link.ShortURL, "https://"), "short URLs name the scheme the client used: %s", link.ShortURL)
			r := cl.do("GET", "/"+link.Code, "", nil)
			assert.Equal(t, http.StatusFound, r.status)
			assert.Equal(t, "max-age=31536000", r.header.Get("Strict-Transport-Security"))
			assert.Equal(t, "DENY", r.header.Get("X-Frame-Options"))
		})
	}
}

// Administrative requests need a token of the admin role and are
// audit-logged with the request id the client got back.
func TestAdminRequestsAuthorizedAndAudited(t *testing.T) {
	var log logBuffer
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Service: Config{Tokens: testTokens, Logger: jsonLogger(&log)}})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	code := cl.mustCreate("https://example.com/admin").Code
	del := "/api/v1/urls/" + code

	other, err := httpsec.NewTokens(httpsec.TokenOptions{Issuer: "shortener", Audience: "another-service", Secret: []byte("a test secret of at least 32 bytes")})
	require.NoError(t, err)
	foreign, err := other.Issue("ops", []string{AdminRole}, time.Hour)
	require.NoError(t, err)
	for name, c := range map[string]struct {
		auth   string
		status int
		code   string
	}{
		"no token":        {"", 401, "missing_token"},
		"malformed":       {"Bearer not.a.token", 401, "invalid_token"},
		"wrong audience":  {"Bearer " + foreign, 401, "invalid_token"},
		"another role":    {"Bearer " + tokenFor(t, "alice", "user"), 403, "forbidden"},
		"an API key only": {"ApiKey 0123456789abcdef", 401, "missing_token"},
	} {
		r := cl.do("DELETE", del, "", nil, "Authorization", c.auth)
		require.Equal(t, c.status, r.status, "%s: %s", name, r.body)
		var p httpsec.Problem
		r.json(t, &p)
		assert.Equal(t, c.code, p.Code, name)
		assert.NotEmpty(t, r.header.Get("WWW-Authenticate"), name)
	}
	assert.Equal(t, http.StatusFound, cl.do("GET", "/"+code, "", nil).status, "a refused delete deleted nothing")
	assert.Empty(t, log.audits(t), "refused requests never reached the action")

	r := cl.do("DELETE", del, "", nil, "Authorization", "Bearer "+adminToken(t), "X-Request-ID", "client-req-42")
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	assert.Equal(t, "client-req-42", r.header.Get("X-Request-ID"))
	assert.Equal(t, http.StatusNotFound, cl.do("GET", "/"+code, "", nil).status)
	audits := log.audits(t)
	require.Len(t, audits, 1)
	for k, v := range map[string]any{"action": "delete", "code": code, "outcome": "deleted", "subject": "ops", "request_id": "client-req-42", "method": "DELETE"} {
		assert.Equal(t, v, audits[0][k], k)
	}

	// Without a token verifier, administrative requests are refused.
	c2 := start(t, ClusterConfig{DataDir: t.TempDir()})
	defer stop(t, c2)
	r = newClient(t, c2.URL()).do("DELETE", del, "", nil, "Authorization", "Bearer "+adminToken(t))
	assert.Equal(t, http.StatusForbidden, r.status)
}

// Behind the balancer, the id the client sent, or the one the balancer
// gave, is the id the instance logs, and the one the client gets back.
func TestRequestIDThroughBalancer(t *testing.T) {
	var log logBuffer
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Instances: 3, Service: Config{Tokens: testTokens, Logger: jsonLogger(&log)}})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	a, b := cl.mustCreate("https://example.com/a").Code, cl.mustCreate("https://example.com/b").Code

	r := cl.do("DELETE", "/api/v1/urls/"+a, "", nil, "Authorization", "Bearer "+adminToken(t), "X-Request-ID", "from-the-client")
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	assert.Equal(t, "from-the-client", r.header.Get("X-Request-ID"))
	r = cl.do("DELETE", "/api/v1/urls/"+b, "", nil, "Authorization", "Bearer "+adminToken(t))
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	given := r.header.Get("X-Request-ID")
	require.NotEmpty(t, given, "the balancer gave the request an id")
	require.Len(t, r.header.Values("X-Request-ID"), 1, "one id, not the balancer's and the instance's")

	audits := log.audits(t)
	require.Len(t, audits, 2)
	assert.Equal(t, "from-the-client", audits[0]["request_id"])
	assert.Equal(t, a, audits[0]["code"])
	assert.Equal(t, given, audits[1]["request_id"], "the instance logged the id the balancer gave")
	assert.Equal(t, b, audits[1]["code"])

	r = cl.do("GET", "/healthz", "", nil, "X-Request-ID", "bad id with spaces")
	assert.Equal(t, http.StatusBadRequest, r.status, "the balancer refuses a malformed id")
}

// With API keys, creation needs one, and each key has its own budget.
func TestAPIKeysForCreation(t *testing.T) {
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Service: Config{
		APIKeys:     map[string]string{"acme": "acme-secret-0123456789", "globex": "globex-secret-0123456789"},
		CreateLimit: ratelimit.Limit{Events: 1, Per: time.Hour, Burst: 2},
	}})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	body := []byte(`{"url":"https://example.com/k"}`)
	post := func(key string) response {
		return cl.do("POST", "/api/v1/urls", "application/json", body, "X-API-Key", key)
	}
	for key, code := range map[string]string{"": "missing_api_key", "acme-secret-wrong-key": "invalid_api_key"} {
		r := post(key)
		require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
		var p httpsec.Problem
		r.json(t, &p)
		assert.Equal(t, code, p.Code)
	}
	for range 2 {
		r := post("acme-secret-0123456789")
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		assert.Equal(t, `"create";q=1;w=3600`, r.header.Get("RateLimit-Policy"))
	}
	r := post("acme-secret-0123456789")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	assert.Equal(t, http.StatusCreated, post("globex-secret-0123456789").status, "globex has its own budget")
	assert.Equal(t, uint64(1), c.Instances[0].Stats().RateLimited)
	// Reading needs no key.
	assert.Equal(t, http.StatusOK, cl.do("GET", "/healthz", "", nil).status)
}

func TestCORS(t *testing.T) {
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Service: Config{AllowedOrigins: []string{"https://app.example"}}})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	body := []byte(`{"url":"https://example.com/cors"}`)
	r := cl.do("POST", "/api/v1/urls", "application/json", body, "Origin", "https://app.example")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	assert.Equal(t, "https://app.example", r.header.Get("Access-Control-Allow-Origin"))

	r = cl.do("POST", "/api/v1/urls", "application/json", body, "Origin", "https://evil.example")
	require.Equal(t, http.StatusForbidden, r.status)
	var p httpsec.Problem
	r.json(t, &p)
	assert.Equal(t, "origin_not_allowed", p.Code)
	assert.Contains(t, p.Detail, "https://evil.example")

	r = cl.do("OPTIONS", "/api/v1/urls/abc", "", nil, "Origin", "https://app.example", "Access-Control-Request-Method", "DELETE", "Access-Control-Request-Headers", "authorization")
	assert.Equal(t, http.StatusNoContent, r.status)
	assert.Contains(t, r.header.Get("Access-Control-Allow-Methods"), "DELETE")

	_, err := New(context.Background(), c.Storage(), Config{AllowedOrigins: []string{"https://app.example/path"}})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

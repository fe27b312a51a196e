package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// client talks to a cluster without following redirects.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newClient(t *testing.T, base string) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, base: base, hc: &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), "body %s", r.body)
}

func (c *client) do(method, path, contentType string, body []byte, hdr ...string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	require.NoError(c.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return response{resp.StatusCode, resp.Header, b}
}

func (c *client) create(body string) response {
	c.t.Helper()
	return c.do(http.MethodPost, "/api/v1/urls", "application/json", []byte(body))
}

func (c *client) mustCreate(url string) URLResponse {
	c.t.Helper()
	r := c.create(fmt.Sprintf(`{"url":%q}`, url))
	require.Equal(c.t, http.StatusCreated, r.status, "body %s", r.body)
	var out URLResponse
	r.json(c.t, &out)
	return out
}

func (c *client) clicks(code string) uint64 {
	c.t.Helper()
	r := c.do(http.MethodGet, "/api/v1/urls/"+code+"/stats", "", nil)
	require.Equal(c.t, http.StatusOK, r.status, "body %s", r.body)
	var s StatsResponse
	r.json(c.t, &s)
	return s.Clicks
}

func start(t *testing.T, cfg ClusterConfig) *Cluster {
	t.Helper()
	c, err := Start(context.Background(), cfg)
	require.NoError(t, err)
	return c
}

func stop(t *testing.T, c *Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Close(ctx))
}

// The core promise, for both strategies: create, redirect, count, restart,
// and the link and its clicks are still there.
func TestCreateRedirectCountRestart(t *testing.T) {
	for _, strategy := range []string{StrategyCounter, StrategyHash} {
		t.Run("strategy="+strategy, func(t *testing.T) {
			dir := t.TempDir()
			cfg := ClusterConfig{DataDir: dir, Service: Config{Strategy: strategy, ClickInterval: time.Hour}}
			c := start(t, cfg)
			cl := newClient(t, c.URL())
			a := cl.mustCreate("https://example.com/a?x=1")
			b := cl.mustCreate("https://example.com/b")
			assert.NotEqual(t, a.Code, b.Code)
			assert.Equal(t, c.URL()+"/"+a.Code, a.ShortURL)
			assert.Len(t, a.Code, 7)
			for range 3 {
				r := cl.do(http.MethodGet, "/"+a.Code, "", nil)
				require.Equal(t, http.StatusFound, r.status)
				assert.Equal(t, "https://example.com/a?x=1", r.header.Get("Location"))
			}
			assert.Equal(t, uint64(3), cl.clicks(a.Code), "clicks still queued are counted")
			assert.Equal(t, uint64(0), cl.clicks(b.Code))
			stop(t, c)

			c = start(t, cfg)
			defer stop(t, c)
			cl = newClient(t, c.URL())
			r := cl.do(http.MethodGet, "/"+b.Code, "", nil)
			require.Equal(t, http.StatusFound, r.status)
			assert.Equal(t, "https://example.com/b", r.header.Get("Location"))
			assert.Equal(t, uint64(3), cl.clicks(a.Code), "clicks were flushed on the graceful stop")
			assert.Equal(t, uint64(1), cl.clicks(b.Code))
			d := cl.mustCreate("https://example.com/d")
			assert.NotContains(t, []string{a.Code, b.Code}, d.Code, "a restart never reuses a code")
		})
	}
}

// Every malformed request gets a 4xx with a JSON problem naming it.
func TestBadInput(t *testing.T) {
	lots := ratelimit.Limit{Events: 1000, Per: time.Second, Burst: 1000}
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Service: Config{Tokens: testTokens, CreateLimit: lots}})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	taken := cl.create(`{"url":"https://example.com","alias":"taken"}`)
	require.Equal(t, http.StatusCreated, taken.status, "%s", taken.body)
	host := strings.TrimPrefix(c.URL(), "http://")
	long := "https://example.com/" + strings.Repeat("a", 2100)
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		code, field                     string
	}{
		{"empty body", "POST", "/api/v1/urls", "application/json", "", 400, "empty_body", ""},
		{"malformed JSON", "POST", "/api/v1/urls", "application/json", `{"url":`, 400, "invalid_json", ""},
		{"not an object", "POST", "/api/v1/urls", "application/json", `["https://a.b"]`, 400, "invalid_json", ""},
		{"unknown field", "POST", "/api/v1/urls", "application/json", `{"url":"https://a.b","admin":true}`, 400, "invalid_json", ""},
		{"trailing data", "POST", "/api/v1/urls", "application/json", `{"url":"https://a.b"} {}`, 400, "invalid_json", ""},
		{"wrong type", "POST", "/api/v1/urls", "application/json", `{"url":42}`, 400, "invalid_json", ""},
		{"body too large", "POST", "/api/v1/urls", "application/json", `{"url":"https://a.b/` + strings.Repeat("x", 9000) + `"}`, 413, "body_too_large", ""},
		{"form content type", "POST", "/api/v1/urls", "application/x-www-form-urlencoded", `url=https://a.b`, 415, "unsupported_media_type", ""},
		{"missing url", "POST", "/api/v1/urls", "application/json", `{}`, 400, "missing_url", "url"},
		{"javascript scheme", "POST", "/api/v1/urls", "", `{"url":"javascript:alert(1)"}`, 400, "unsupported_scheme", "url"},
		{"JavaScript scheme", "POST", "/api/v1/urls", "", `{"url":"JaVaScRiPt://alert(1)"}`, 400, "unsupported_scheme", "url"},
		{"data scheme", "POST", "/api/v1/urls", "", `{"url":"data:text/html,<script>alert(1)</script>"}`, 400, "unsupported_scheme", "url"},
		{"ftp scheme", "POST", "/api/v1/urls", "", `{"url":"ftp://example.com/f"}`, 400, "unsupported_scheme", "url"},
		{"relative", "POST", "/api/v1/urls", "", `{"url":"/just/a/path"}`, 400, "unsupported_scheme", "url"},
		{"protocol relative", "POST", "/api/v1/urls", "", `{"url":"//evil.example"}`, 400, "unsupported_scheme", "url"},
		{"no host", "POST", "/api/v1/urls", "", `{"url":"https:///path"}`, 400, "invalid_url", "url"},
		{"credentials", "POST", "/api/v1/urls", "", `{"url":"https://bank.example@evil.example/"}`, 400, "invalid_url", "url"},
		{"space", "POST", "/api/v1/urls", "", `{"url":"https://example.com/a b"}`, 400, "invalid_url", "url"},
		{"control character", "POST", "/api/v1/urls", "", `{"url":"https://example.com/\u0000"}`, 400, "invalid_url", "url"},
		{"bad port", "POST", "/api/v1/urls", "", `{"url":"https://example.com:99999/"}`, 400, "invalid_url", "url"},
		{"too long", "POST", "/api/v1/urls", "", `{"url":"` + long + `"}`, 400, "url_too_long", "url"},
		{"self reference", "POST", "/api/v1/urls", "", `{"url":"http://` + host + `/abc"}`, 400, "self_reference", "url"},
		{"alias charset", "POST", "/api/v1/urls", "", `{"url":"https://a.b","alias":"a/b/c"}`, 400, "invalid_alias", "alias"},
		{"alias unicode", "POST", "/api/v1/urls", "", `{"url":"https://a.b","alias":"café"}`, 400, "invalid_alias", "alias"},
		{"alias too short", "POST", "/api/v1/urls", "", `{"url":"https://a.b","alias":"ab"}`, 400, "invalid_alias", "alias"},
		{"alias too long", "POST", "/api/v1/urls", "", `{"url":"https://a.b","alias":"` + strings.Repeat("a", 33) + `"}`, 400, "invalid_alias", "alias"},
		{"reserved alias", "POST", "/api/v1/urls", "", `{"url":"https://a.b","alias":"Metrics"}`, 400, "reserved_alias", "alias"},
		{"alias taken", "POST", "/api/v1/urls", "", `{"url":"https://other.example","alias":"taken"}`, 409, "alias_taken", "alias"},
		{"negative expiry", "POST", "/api/v1/urls", "", `{"url":"https://a.b","expires_in":-1}`, 400, "invalid_expiry", "expires_in"},
		{"huge expiry", "POST", "/api/v1/urls", "", `{"url":"https://a.b","expires_in":99999999999}`, 400, "invalid_expiry", "expires_in"},
		{"GET collection", "GET", "/api/v1/urls", "", "", 405, "method_not_allowed", ""},
		{"POST redirect", "POST", "/taken", "", "", 405, "method_not_allowed", ""},
		{"PUT stats", "PUT", "/api/v1/urls/taken/stats", "", "", 405, "method_not_allowed", ""},
		{"unknown code", "GET", "/zzzzzzz", "", "", 404, "not_found", ""},
		{"code charset", "GET", "/a.b.c", "", "", 404, "not_found", ""},
		{"code too long", "GET", "/" + strings.Repeat("a", 40), "", "", 404, "not_found", ""},
		{"unknown stats", "GET", "/api/v1/urls/zzzzzzz/stats", "", "", 404, "not_found", ""},
		{"bad stats code", "GET", "/api/v1/urls/%3Cscript%3E/stats", "", "", 404, "not_found", ""},
		{"unknown path", "GET", "/no/such/path", "", "", 404, "not_found", ""},
		{"delete without token", "DELETE", "/api/v1/urls/taken", "", "", 401, "missing_token", "Authorization"},
		{"backup without token", "GET", "/api/v1/admin/backup", "", "", 401, "missing_token", "Authorization"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cl.do(tc.method, tc.path, tc.ctype, []byte(tc.body))
			require.Equal(t, tc.status, r.status, "body %s", r.body)
			assert.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			assert.Empty(t, r.header.Get("Location"), "no error answer redirects")
			var p httpsec.Problem
			r.json(t, &p)
			assert.Equal(t, tc.status, p.Status)
			assert.Equal(t, tc.code, p.Code)
			assert.Equal(t, tc.field, p.Field)
			assert.NotEmpty(t, p.Detail)
		})
	}
	// Nothing half-written: the refused alias still points where it did.
	r := cl.do("GET", "/taken", "", nil)
	assert.Equal(t, "https://example.com", r.header.Get("Location"))
}

// No path but a stored code's redirect sends a Location, and none sends
// one to a host taken from the request.
func TestNoOpenRedirect(t *testing.T) {
	c := start(t, ClusterConfig{DataDir: t.TempDir()})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	code := cl.mustCreate("https://example.com/").Code
	for _, path := range []string{
		"/api/v1/urls/" + code + "/stats?next=https://evil.example",
		"/api/v1/urls/" + code + "?redirect=https://evil.example",
		"/" + code + "/../../evil.example",
		"//evil.example/",
		"/%2F%2Fevil.example",
		"/" + code + "?url=https://evil.example",
	} {
		r := cl.do("GET", path, "", nil)
		loc := r.header.Get("Location")
		if r.status == http.StatusFound {
			assert.Equal(t, "https://example.com/", loc, path)
			continue
		}
		// Go's ServeMux answers unclean paths with a redirect to the
		// cleaned path on this host; nothing may name another host.
		u, err := url.Parse(loc)
		require.NoError(t, err)
		assert.True(t, u.Host == "" && !strings.HasPrefix(loc, "//") && u.Scheme == "", "%s redirected to %q", path, loc)
	}
}

// A link with expires_in answers 410 Gone once it has expired.
func TestExpiry(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Service: Config{Now: clock}})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	r := cl.create(`{"url":"https://example.com/sale","expires_in":60}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	var u URLResponse
	r.json(t, &u)
	require.NotNil(t, u.ExpiresAt)
	assert.Equal(t, clock().Add(time.Minute).UTC(), *u.ExpiresAt)
	assert.Equal(t, http.StatusFound, cl.do("GET", "/"+u.Code, "", nil).status)
	now.Add(61)
	r = cl.do("GET", "/"+u.Code, "", nil)
	assert.Equal(t, http.StatusGone, r.status)
	var p httpsec.Problem
	r.json(t, &p)
	assert.Equal(t, "expired", p.Code)
	assert.Equal(t, uint64(1), cl.clicks(u.Code), "stats of an expired link stay readable")
}

// Idempotent creation returns the live link to the same URL; without the
// flag the counter strategy makes a new code, the hash strategy cannot.
func TestIdempotentCreate(t *testing.T) {
	for _, strategy := range []string{StrategyCounter, StrategyHash} {
		t.Run("strategy="+strategy, func(t *testing.T) {
			c := start(t, ClusterConfig{DataDir: t.TempDir(), Service: Config{Strategy: strategy}})
			defer stop(t, c)
			cl := newClient(t, c.URL())
			first := cl.create(`{"url":"https://example.com/x","idempotent":true}`)
			require.Equal(t, http.StatusCreated, first.status)
			again := cl.create(`{"url":"https://example.com/x","idempotent":true}`)
			require.Equal(t, http.StatusOK, again.status)
			var a, b URLResponse
			first.json(t, &a)
			again.json(t, &b)
			assert.Equal(t, a.Code, b.Code)
			assert.True(t, b.Existing)
			r := cl.create(`{"url":"https://example.com/x"}`)
			var other URLResponse
			r.json(t, &other)
			if strategy == StrategyHash {
				assert.Equal(t, http.StatusOK, r.status, "one URL, one hash code")
				assert.Equal(t, a.Code, other.Code)
			} else {
				assert.Equal(t, http.StatusCreated, r.status)
				assert.NotEqual(t, a.Code, other.Code)
			}
			// A taken alias with the same URL is idempotent too.
			r = cl.create(`{"url":"https://example.com/x","alias":"mine"}`)
			require.Equal(t, http.StatusCreated, r.status)
			assert.Equal(t, http.StatusOK, cl.create(`{"url":"https://example.com/x","alias":"mine","idempotent":true}`).status)
			assert.Equal(t, http.StatusConflict, cl.create(`{"url":"https://example.com/x","alias":"mine"}`).status)
		})
	}
}

// A generated code already taken (here by a custom alias) is skipped, for
// both strategies: creation is a conditional write, never an overwrite.
func TestCollisionsAreRetried(t *testing.T) {
	for _, strategy := range []string{StrategyCounter, StrategyHash} {
		t.Run("strategy="+strategy, func(t *testing.T) {
			c := start(t, ClusterConfig{DataDir: t.TempDir(), Service: Config{Strategy: strategy}})
			defer stop(t, c)
			cl := newClient(t, c.URL())
			next := counterCode(0) // the first ID of a new store
			if strategy == StrategyHash {
				next = hashCode("https://example.com/target", 0, 7)
			}
			r := cl.create(fmt.Sprintf(`{"url":"https://squatter.example","alias":%q}`, next))
			require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
			got := cl.mustCreate("https://example.com/target")
			assert.NotEqual(t, next, got.Code)
			assert.Equal(t, "https://squatter.example", cl.do("GET", "/"+next, "", nil).header.Get("Location"))
			assert.Equal(t, "https://example.com/target", cl.do("GET", "/"+got.Code, "", nil).header.Get("Location"))
		})
	}
}

// Creation is limited per client IP, with the IETF RateLimit headers on
// every answer and a JSON 429 with Retry-After beyond the limit.
func TestCreateRateLimit(t *testing.T) {
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Service: Config{CreateLimit: ratelimit.Limit{Events: 1, Per: time.Hour, Burst: 2}}})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	for i := range 2 {
		r := cl.create(fmt.Sprintf(`{"url":"https://example.com/%d"}`, i))
		require.Equal(t, http.StatusCreated, r.status)
		assert.Equal(t, `"create";q=1;w=3600`, r.header.Get("RateLimit-Policy"))
		assert.Contains(t, r.header.Get("RateLimit"), `"create";r=`)
	}
	r := cl.create(`{"url":"https://example.com/3"}`)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	assert.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	var p httpsec.Problem
	r.json(t, &p)
	assert.Equal(t, 429, p.Status)
	// Redirects are not limited.
	assert.Equal(t, http.StatusNotFound, cl.do("GET", "/abcdefg", "", nil).status)
	assert.Equal(t, uint64(1), c.Instances[0].Stats().RateLimited)
}

// Concurrent clicks all reach the store on a graceful stop, though none
// was flushed before it.
func TestNoClickLostOnGracefulStop(t *testing.T) {
	dir := t.TempDir()
	cfg := ClusterConfig{DataDir: dir, Service: Config{ClickInterval: time.Hour, ClickBatch: 7}}
	c := start(t, cfg)
	cl := newClient(t, c.URL())
	codes := []string{cl.mustCreate("https://a.example").Code, cl.mustCreate("https://b.example").Code, cl.mustCreate("https://c.example").Code}
	const perCode, workers = 40, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perCode * len(codes) / workers {
				r := cl.do("GET", "/"+codes[(w+i)%len(codes)], "", nil)
				assert.Equal(t, http.StatusFound, r.status)
			}
		})
	}
	wg.Wait()
	stop(t, c)
	storage, err := OpenStorage(dir, StorageOptions{})
	require.NoError(t, err)
	defer storage.Close()
	var total uint64
	for _, code := range codes {
		n, err := storage.Count(context.Background(), "c:"+code)
		require.NoError(t, err)
		total += n
	}
	assert.Equal(t, uint64(perCode*len(codes)), total)
}

// /metrics serves the Prometheus text format with the service's metrics.
func TestMetrics(t *testing.T) {
	c := start(t, ClusterConfig{DataDir: t.TempDir()})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	code := cl.mustCreate("https://example.com").Code
	cl.do("GET", "/"+code, "", nil)
	cl.do("GET", "/"+code, "", nil)
	cl.do("GET", "/abcdefg", "", nil) // unknown: a miss
	r := cl.do("GET", "/metrics", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	body := string(r.body)
	for _, want := range []string{
		`shortener_http_requests_total{code="302",method="GET",route="/{code}"} 2`,
		`shortener_http_request_duration_seconds_bucket{route="/{code}"`,
		"shortener_cache_hits_total 2", "shortener_cache_misses_total 1", `shortener_cache_hit_ratio 0.666`,
		"shortener_ratelimit_rejections_total 0", "shortener_redis_breaker_state 0",
		"shortener_urls_created_total 1", "shortener_clicks_queued",
	} {
		assert.Contains(t, body, want)
	}
}

// Three instances behind the lb proxy share the store: a link created
// through the balancer redirects from every instance, and the per-IP
// limit sees the client, not the balancer.
func TestClusterBehindProxy(t *testing.T) {
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Instances: 3})
	defer stop(t, c)
	require.Len(t, c.InstanceURLs, 3)
	assert.NotContains(t, c.InstanceURLs, c.URL())
	cl := newClient(t, c.URL())
	codes := map[string]bool{}
	for i := range 10 {
		codes[cl.mustCreate(fmt.Sprintf("https://example.com/%d", i)).Code] = true
	}
	assert.Len(t, codes, 10, "instances allocate disjoint ID blocks")
	for code := range codes {
		for _, u := range c.InstanceURLs {
			assert.Equal(t, http.StatusFound, newClient(t, u).do("GET", "/"+code, "", nil).status)
		}
		assert.Equal(t, http.StatusFound, cl.do("GET", "/"+code, "", nil).status)
	}
	served := 0
	for _, s := range c.Instances {
		if s.Stats().Router.Gets > 0 || s.Stats().Cache.Hits > 0 {
			served++
		}
	}
	assert.Equal(t, 3, served)
}

// Behind the balancer, short URLs and the self-reference check use the
// address the client used, not an instance's internal port.
func TestPublicAddressBehindProxy(t *testing.T) {
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Instances: 3})
	defer stop(t, c)
	cl := newClient(t, c.URL())
	var last URLResponse
	for i := range 6 { // P2C spreads them over the instances
		last = cl.mustCreate(fmt.Sprintf("https://example.com/%d", i))
		assert.Equal(t, c.URL()+"/"+last.Code, last.ShortURL)
	}
	r := cl.do(http.MethodGet, "/api/v1/urls/"+last.Code, "", nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var info URLResponse
	r.json(t, &info)
	assert.Equal(t, last.ShortURL, info.ShortURL)
	r = cl.create(fmt.Sprintf(`{"url":%q}`, last.ShortURL))
	require.Equal(t, http.StatusBadRequest, r.status, "shortening a short URL: %s", r.body)
	var p httpsec.Problem
	r.json(t, &p)
	assert.Equal(t, "self_reference", p.Code)
}

// Forwarding headers are believed from trusted proxies only, and a base
// URL overrides them.
func TestPublicAddress(t *testing.T) {
	post := func(t *testing.T, cfg Config, hdr ...string) (URLResponse, string) {
		c := start(t, ClusterConfig{DataDir: t.TempDir(), Service: cfg})
		t.Cleanup(func() { stop(t, c) })
		cl := newClient(t, c.URL())
		r := cl.do(http.MethodPost, "/api/v1/urls", "application/json", []byte(`{"url":"https://example.com/"}`), hdr...)
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		var out URLResponse
		r.json(t, &out)
		return out, c.URL()
	}
	fwd := []string{"X-Forwarded-Host", "sho.rt", "X-Forwarded-Proto", "https"}
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	t.Run("untrusted peer", func(t *testing.T) {
		out, base := post(t, Config{}, fwd...)
		assert.Equal(t, base+"/"+out.Code, out.ShortURL, "a client cannot choose the host of its links")
	})
	t.Run("trusted proxy", func(t *testing.T) {
		out, _ := post(t, Config{TrustedProxies: loopback}, fwd...)
		assert.Equal(t, "https://sho.rt/"+out.Code, out.ShortURL)
	})
	t.Run("trusted proxy, malformed host", func(t *testing.T) {
		out, base := post(t, Config{TrustedProxies: loopback}, "X-Forwarded-Host", "evil.example/phish?", "X-Forwarded-Proto", "javascript")
		assert.Equal(t, base+"/"+out.Code, out.ShortURL)
	})
	t.Run("base URL", func(t *testing.T) {
		c := start(t, ClusterConfig{DataDir: t.TempDir(), Service: Config{BaseURL: "https://sho.rt/", TrustedProxies: loopback}})
		defer stop(t, c)
		cl := newClient(t, c.URL())
		r := cl.do(http.MethodPost, "/api/v1/urls", "application/json", []byte(`{"url":"https://example.com/"}`), "X-Forwarded-Host", "other.example")
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		var out URLResponse
		r.json(t, &out)
		assert.Equal(t, "https://sho.rt/"+out.Code, out.ShortURL)
		r = cl.create(`{"url":"https://SHO.RT/abc"}`)
		assert.Equal(t, http.StatusBadRequest, r.status, "the base URL's host is this service: %s", r.body)
	})
	for _, bad := range []string{"sho.rt", "ftp://sho.rt", "https://", "https://sho.rt/?q=1"} {
		_, err := Start(context.Background(), ClusterConfig{DataDir: t.TempDir(), Service: Config{BaseURL: bad}})
		require.ErrorIs(t, err, ErrInvalidConfig, bad)
		assert.ErrorContains(t, err, bad)
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]ClusterConfig{
		"strategy":   {DataDir: dir, Service: Config{Strategy: "uuid"}},
		"redirect":   {DataDir: dir, Service: Config{Redirect: 200}},
		"hashlen":    {DataDir: dir, Service: Config{Strategy: StrategyHash, HashLength: 3}},
		"negative":   {DataDir: dir, Service: Config{CacheTTL: -1}},
		"instances":  {DataDir: dir, Instances: 100},
		"no dir":     {},
		"bad limit":  {DataDir: dir, Service: Config{CreateLimit: ratelimit.Limit{Events: -1, Per: time.Second, Burst: 1}}},
		"bad shards": {DataDir: dir, Shards: -2},
		"latency":    {DataDir: dir, StoreLatency: -time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Start(context.Background(), cfg)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "service: "), err.Error())
		})
	}
	// A directory keeps its shard count.
	dir = t.TempDir()
	c := start(t, ClusterConfig{DataDir: dir, Shards: 2})
	stop(t, c)
	_, err := Start(context.Background(), ClusterConfig{DataDir: dir, Shards: 3})
	require.ErrorIs(t, err, ErrStorage)
}

func limitPerHour(n int) ratelimit.Limit { return ratelimit.Limit{Events: n, Per: time.Hour, Burst: n} }

// Without Redis, a delete on one instance of a cluster evicts the code
// from every other instance's L1 before it is answered, through the
// cluster's in-process bus.
func TestDeleteEvictsEveryInstanceInProcess(t *testing.T) {
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Instances: 3, Service: Config{Tokens: testTokens}})
	defer stop(t, c)
	var cls []*client
	for _, u := range c.InstanceURLs {
		cls = append(cls, newClient(t, u))
	}
	code := cls[0].mustCreate("https://example.com/gone-soon").Code
	keep := cls[0].mustCreate("https://example.com/stays").Code
	for i, cl := range cls {
		for _, k := range []string{code, keep} {
			require.Equal(t, http.StatusFound, cl.do("GET", "/"+k, "", nil).status)
			_, ok := c.Instances[i].cache.l1.Get(k)
			require.True(t, ok, "instance %d caches %s", i, k)
		}
	}

	require.Equal(t, http.StatusNoContent, cls[1].do("DELETE", "/api/v1/urls/"+code, "", nil, "Authorization", "Bearer "+adminToken(t)).status)
	for i, cl := range cls {
		_, ok := c.Instances[i].cache.l1.Get(code)
		assert.False(t, ok, "instance %d's L1 dropped the deleted code", i)
		assert.Equal(t, http.StatusNotFound, cl.do("GET", "/"+code, "", nil).status, "instance %d", i)
		_, ok = c.Instances[i].cache.l1.Get(keep)
		assert.True(t, ok, "instance %d keeps the other code", i)
	}
	assert.Equal(t, uint64(1), c.Instances[0].Stats().PeerEvictions)
	assert.Equal(t, uint64(0), c.Instances[1].Stats().PeerEvictions, "the deleting instance evicts its own entry directly")
	assert.Equal(t, uint64(1), c.Instances[2].Stats().PeerEvictions)
	assert.Contains(t, string(cls[2].do("GET", "/metrics", "", nil).body), "shortener_cache_peer_evictions_total 1")
}

// A stopped instance leaves the bus: invalidations no longer reach it.
func TestBusMembership(t *testing.T) {
	dir := t.TempDir()
	storage, err := OpenStorage(dir, StorageOptions{})
	require.NoError(t, err)
	defer storage.Close()
	var bus Bus
	a, err := New(context.Background(), storage, Config{Bus: &bus})
	require.NoError(t, err)
	b, err := New(context.Background(), storage, Config{Bus: &bus})
	require.NoError(t, err)
	rec := Record{URL: "https://example.com"}
	require.NoError(t, b.cache.Set(context.Background(), "k", rec, 0))
	assert.Equal(t, 1, bus.invalidate(a.cache, "k"))
	require.NoError(t, b.cache.Set(context.Background(), "k", rec, 0))
	require.NoError(t, b.Close(context.Background()))
	assert.Equal(t, 0, bus.invalidate(a.cache, "k"), "b left the bus")
	require.NoError(t, a.Close(context.Background()))
}

// ReadLatency delays reads, and only reads, by exactly its value, and a
// cancelled context cuts the wait short.
func TestStoreReadLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lat = 40 * time.Millisecond
		storage, err := OpenStorage(t.TempDir(), StorageOptions{Shards: 2, ReadLatency: lat})
		require.NoError(t, err)
		defer storage.Close()
		ctx := context.Background()
		t0 := time.Now()
		_, created, err := storage.Create(ctx, "u:abc", []byte(`{"url":"https://example.com"}`))
		require.NoError(t, err)
		require.True(t, created)
		assert.Zero(t, time.Since(t0), "writes are not delayed")

		t0 = time.Now()
		v, err := storage.Router().Get(ctx, "u:abc")
		require.NoError(t, err)
		assert.JSONEq(t, `{"url":"https://example.com"}`, string(v))
		assert.Equal(t, lat, time.Since(t0))

		t0 = time.Now()
		n, err := storage.Count(ctx, "c:abc")
		require.NoError(t, err)
		assert.Zero(t, n)
		assert.Equal(t, lat, time.Since(t0))

		cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		t0 = time.Now()
		_, err = storage.Router().Get(cctx, "u:abc")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 10*time.Millisecond, time.Since(t0))
	})
	_, err := OpenStorage(t.TempDir(), StorageOptions{ReadLatency: -time.Millisecond})
	require.ErrorIs(t, err, ErrStorage)
	assert.ErrorContains(t, err, "-1ms")
}

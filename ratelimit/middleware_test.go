package ratelimit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sfItem is one member of an RFC 8941 structured-field list.
type sfItem struct {
	value  any // string, token (sfToken), int64, []byte, bool
	params map[string]any
}

type sfToken string

// parseSFList parses an RFC 8941 sf-list of items (inner lists are not
// needed here and are rejected), strictly: any deviation is an error.
func parseSFList(s string) ([]sfItem, error) {
	p := &sfParser{s: strings.TrimLeft(s, " ")}
	var out []sfItem
	for {
		v, err := p.bareItem()
		if err != nil {
			return nil, err
		}
		it := sfItem{value: v, params: map[string]any{}}
		for p.peek() == ';' {
			p.i++
			for p.peek() == ' ' {
				p.i++
			}
			k := p.key()
			if k == "" {
				return nil, fmt.Errorf("empty parameter key at %d", p.i)
			}
			var pv any = true
			if p.peek() == '=' {
				p.i++
				if pv, err = p.bareItem(); err != nil {
					return nil, err
				}
			}
			it.params[k] = pv
		}
		out = append(out, it)
		for p.peek() == ' ' || p.peek() == '\t' {
			p.i++
		}
		if p.i == len(p.s) {
			return out, nil
		}
		if p.peek() != ',' {
			return nil, fmt.Errorf("expected ',' at %d in %q", p.i, s)
		}
		p.i++
		for p.peek() == ' ' || p.peek() == '\t' {
			p.i++
		}
		if p.i == len(p.s) {
			return nil, fmt.Errorf("trailing comma in %q", s)
		}
	}
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *sfParser) key() string {
	start := p.i
	for c := p.peek(); c >= 'a' && c <= 'z' || c == '*' || (p.i > start && (c >= '0' && c <= '9' || strings.IndexByte("_-.", c) >= 0)); c = p.peek() {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *sfParser) bareItem() (any, error) {
	switch c := p.peek(); {
	case c == '"':
		var b strings.Builder
		for p.i++; p.i < len(p.s); p.i++ {
			switch ch := p.s[p.i]; {
			case ch == '\\':
				p.i++
				if p.i == len(p.s) || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
					return nil, errors.New("bad escape")
				}
				b.WriteByte(p.s[p.i])
			case ch == '"':
				p.i++
				return b.String(), nil
			case ch < 0x20 || ch > 0x7e:
				return nil, errors.New("bad string character")
			default:
				b.WriteByte(ch)
			}
		}
		return nil, errors.New("unterminated string")
	case c == '-' || c >= '0' && c <= '9':
		start := p.i
		p.i++
		for p.peek() >= '0' && p.peek() <= '9' {
			p.i++
		}
		if p.peek() == '.' {
			return nil, errors.New("decimals not expected")
		}
		if p.i-start > 15 {
			return nil, errors.New("integer too long")
		}
		return strconv.ParseInt(p.s[start:p.i], 10, 64)
	case c == ':':
		end := strings.IndexByte(p.s[p.i+1:], ':')
		if end < 0 {
			return nil, errors.New("unterminated byte sequence")
		}
		raw := p.s[p.i+1 : p.i+1+end]
		p.i += end + 2
		return base64.StdEncoding.DecodeString(raw)
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return p.s[p.i-1] == '1', nil
		}
		return nil, errors.New("bad boolean")
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*':
		start := p.i
		for p.i++; p.i < len(p.s) && (strings.IndexByte("!#$%&'*+-.^_`|~:/", p.s[p.i]) >= 0 ||
			p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] >= 'A' && p.s[p.i] <= 'Z'); p.i++ {
		}
		return sfToken(p.s[start:p.i]), nil
	}
	return nil, fmt.Errorf("unexpected %q at %d", p.peek(), p.i)
}

func TestParseSFList_Strict(t *testing.T) {
	items, err := parseSFList(`"default";q=100;w=60, "day";q=1000;w=86400;pk=:AQID:`)
	require.NoError(t, err)
	require.Len(t, items, 2)
	assert.Equal(t, "day", items[1].value)
	assert.Equal(t, []byte{1, 2, 3}, items[1].params["pk"])
	for _, bad := range []string{`"x";q=1,`, `"x";q=1.5`, `"x`, `"x";Q=1`, `"x" "y"`, `:AQID`} {
		_, err := parseSFList(bad)
		assert.Error(t, err, bad)
	}
}

func newKeyedGCRA(t *testing.T, l Limit) *Keyed {
	t.Helper()
	k, err := NewKeyed(AlgGCRA, KeyedOptions{}, l)
	require.NoError(t, err)
	return k
}

func ok200() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
}

func get(t *testing.T, srv *httptest.Server, path string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// End to end: allowed responses carry the IETF fields, the excess gets a
// 429 with Retry-After, the same fields and a problem+json body, and every
// field parses as an RFC 8941 structured field.
func TestMiddleware_IETFHeadersEndToEnd(t *testing.T) {
	lim := Limit{Events: 3, Per: time.Minute, Burst: 3}
	mw, err := NewMiddleware(MiddlewareOptions{Limiter: newKeyedGCRA(t, lim), PartitionKey: true})
	require.NoError(t, err)
	srv := httptest.NewServer(mw.Handler(ok200()))
	defer srv.Close()
	for i := range 3 {
		resp := get(t, srv, "/")
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d", i)
		pol, err := parseSFList(resp.Header.Get("RateLimit-Policy"))
		require.NoError(t, err, resp.Header.Get("RateLimit-Policy"))
		require.Len(t, pol, 1)
		assert.Equal(t, "default", pol[0].value)
		assert.Equal(t, int64(3), pol[0].params["q"])
		assert.Equal(t, int64(60), pol[0].params["w"])
		rl, err := parseSFList(resp.Header.Get("RateLimit"))
		require.NoError(t, err, resp.Header.Get("RateLimit"))
		require.Len(t, rl, 1)
		assert.Equal(t, "default", rl[0].value)
		assert.Equal(t, int64(2-i), rl[0].params["r"])
		assert.Equal(t, int64(20*(i+1)), rl[0].params["t"], "seconds until the bucket is full again")
		pk, ok := rl[0].params["pk"].([]byte)
		require.True(t, ok, "pk is a byte sequence")
		assert.Len(t, pk, 12)
		assert.Empty(t, resp.Header.Get("X-RateLimit-Limit"))
	}
	resp := get(t, srv, "/")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "20", resp.Header.Get("Retry-After"))
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	var body problem
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, problem{Type: "about:blank", Title: "Too Many Requests", Status: 429,
		Detail: "rate limit of 3 per 1m0s exceeded; retry in 20s"}, body)
	rl, err := parseSFList(resp.Header.Get("RateLimit"))
	require.NoError(t, err)
	assert.Equal(t, int64(0), rl[0].params["r"])
	assert.Equal(t, int64(20), rl[0].params["t"], "a denied client learns when to come back")
}

func TestMiddleware_LegacyAndBoth(t *testing.T) {
	for _, style := range []HeaderStyle{HeadersLegacy, HeadersBoth, HeadersNone} {
		mw, err := NewMiddleware(MiddlewareOptions{Limiter: newKeyedGCRA(t, PerSecond(2)), Headers: style})
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		mw.Handler(ok200()).ServeHTTP(rec, request("203.0.113.1:1"))
		h := rec.Header()
		legacy := style == HeadersLegacy || style == HeadersBoth
		assert.Equal(t, legacy, h.Get("X-RateLimit-Limit") == "2", "style %d", style)
		if legacy {
			assert.Equal(t, "1", h.Get("X-RateLimit-Remaining"))
			assert.Equal(t, "1", h.Get("X-RateLimit-Reset"))
		}
		assert.Equal(t, style == HeadersBoth, h.Get("RateLimit") != "", "style %d", style)
	}
}

// Per-route limits: each route has its own middleware and limit; per-user
// keys come from a caller-supplied function.
func TestMiddleware_PerRouteAndPerUser(t *testing.T) {
	user := func(r *http.Request) (string, error) {
		u := r.Header.Get("X-User")
		if u == "" {
			return "", errors.New("no user")
		}
		return u, nil
	}
	login, err := NewMiddleware(MiddlewareOptions{Limiter: newKeyedGCRA(t, PerMinute(1)), Key: user, Policy: "login"})
	require.NoError(t, err)
	search, err := NewMiddleware(MiddlewareOptions{Limiter: newKeyedGCRA(t, PerMinute(5)), Key: user, Policy: "search"})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/login", login.Handler(ok200()))
	mux.Handle("/search", search.Handler(ok200()))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	assert.Equal(t, 200, get(t, srv, "/login", "X-User", "ann").StatusCode)
	assert.Equal(t, 429, get(t, srv, "/login", "X-User", "ann").StatusCode)
	assert.Equal(t, 200, get(t, srv, "/login", "X-User", "bob").StatusCode, "another user")
	for range 5 {
		resp := get(t, srv, "/search", "X-User", "ann")
		assert.Equal(t, 200, resp.StatusCode, "another route")
		assert.Contains(t, resp.Header.Get("RateLimit-Policy"), `"search";q=5;w=60`)
	}
	assert.Equal(t, 429, get(t, srv, "/search", "X-User", "ann").StatusCode)
	resp := get(t, srv, "/search")
	assert.Equal(t, 500, resp.StatusCode, "a failing key function")
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
}

// Errors reach OnError wrapped in the package's sentinels; a malformed
// forwarding header from a trusted proxy is a 400 by default.
func TestMiddleware_Errors(t *testing.T) {
	ip, err := NewClientIP(ClientIPOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	require.NoError(t, err)
	mw, err := NewMiddleware(MiddlewareOptions{Limiter: newKeyedGCRA(t, PerSecond(1)), Key: ip.Key})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	mw.Handler(ok200()).ServeHTTP(rec, request("10.0.0.1:1", "X-Forwarded-For", "nonsense"))
	assert.Equal(t, 400, rec.Code)
	assert.Contains(t, rec.Body.String(), "malformed forwarding header")

	var got error
	denied := 0
	mw, err = NewMiddleware(MiddlewareOptions{
		Limiter:  newKeyedGCRA(t, PerSecond(1)),
		Key:      func(*http.Request) (string, error) { return "", nil },
		OnError:  func(w http.ResponseWriter, _ *http.Request, err error) { got = err; w.WriteHeader(418) },
		OnDenied: func(*http.Request, string, Decision) { denied++ },
	})
	require.NoError(t, err)
	rec = httptest.NewRecorder()
	mw.Handler(ok200()).ServeHTTP(rec, request("10.0.0.1:1"))
	assert.Equal(t, 418, rec.Code)
	require.ErrorIs(t, got, ErrEmptyKey)
	require.ErrorIs(t, got, ErrKeyFunc)

	// A cost larger than the burst is an error, not a 429 forever.
	mw, err = NewMiddleware(MiddlewareOptions{Limiter: newKeyedGCRA(t, PerSecond(1)), Cost: func(*http.Request) int { return 5 },
		OnError: func(w http.ResponseWriter, _ *http.Request, err error) { got = err; w.WriteHeader(500) }})
	require.NoError(t, err)
	rec = httptest.NewRecorder()
	mw.Handler(ok200()).ServeHTTP(rec, request("10.0.0.1:1"))
	require.ErrorIs(t, got, ErrExceedsLimit)
	assert.Zero(t, denied)
}

// Several limits on one key are all published, and the RateLimit field
// names the one closest to exhaustion.
func TestMiddleware_MultiPolicy(t *testing.T) {
	k, err := NewKeyed(AlgGCRA, KeyedOptions{}, Limit{Events: 10, Per: time.Second, Burst: 10}, PerDay(3))
	require.NoError(t, err)
	mw, err := NewMiddleware(MiddlewareOptions{Limiter: k, Policy: "api"})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	mw.Handler(ok200()).ServeHTTP(rec, request("203.0.113.1:1"))
	pol, err := parseSFList(rec.Header().Get("RateLimit-Policy"))
	require.NoError(t, err)
	require.Len(t, pol, 2)
	assert.Equal(t, "api", pol[0].value)
	assert.Equal(t, "api-1", pol[1].value)
	assert.Equal(t, int64(86400), pol[1].params["w"])
	rl, err := parseSFList(rec.Header().Get("RateLimit"))
	require.NoError(t, err)
	assert.Equal(t, "api-1", rl[0].value)
	assert.Equal(t, int64(2), rl[0].params["r"])
}

func TestMiddleware_BadConfig(t *testing.T) {
	_, err := NewMiddleware(MiddlewareOptions{})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewMiddleware(MiddlewareOptions{Limiter: newKeyedGCRA(t, PerSecond(1)), Headers: HeaderStyle(9)})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewMiddleware(MiddlewareOptions{Limiter: newKeyedGCRA(t, PerSecond(1)), Policy: `bad"name`})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), `bad\"name`)
}

// One key for every request makes one limit for the whole service: the
// second client is refused once the first has spent the shared budget,
// and the headers name the one limit.
func TestMiddleware_OneLimitForTheService(t *testing.T) {
	k, err := NewKeyed(AlgTokenBucket, KeyedOptions{}, PerMinute(1))
	require.NoError(t, err)
	mw, err := NewMiddleware(MiddlewareOptions{Limiter: k, Key: func(*http.Request) (string, error) { return "all", nil }})
	require.NoError(t, err)
	h := mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	codes := []int{}
	for _, addr := range []string{"192.0.2.1:1000", "198.51.100.7:2000"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		codes = append(codes, w.Code)
		assert.Contains(t, w.Header().Get("RateLimit-Policy"), `"default";q=1;w=60`)
	}
	assert.Equal(t, []int{http.StatusOK, http.StatusTooManyRequests}, codes)
}

// decided is a KeyedLimiter that returns a set decision, to drive the
// headers through the roundings a real limiter rarely hits.
type decided Decision

func (d decided) Decide(context.Context, string, int) (Decision, error) { return Decision(d), nil }

// Times in the headers are whole seconds rounded up, so a client that
// waits them is never early; a denial always says to wait at least a
// second; a negative Remaining (a bucket in debt) reads 0.
func TestMiddleware_HeaderRounding(t *testing.T) {
	l := Limit{Events: 5, Per: 1500 * time.Millisecond, Burst: 5}
	for _, c := range []struct {
		d                  Decision
		retryAfter, fields string // Retry-After; r, t and the limit of the IETF RateLimit
		legacy             [3]string
	}{
		{Decision{Allowed: true, Remaining: 4, ResetAfter: time.Second}, "", `"default";r=4;t=1`, [3]string{"5", "4", "1"}},
		{Decision{Allowed: true, Remaining: 3, ResetAfter: time.Second + 1}, "", `"default";r=3;t=2`, [3]string{"5", "3", "2"}},
		{Decision{Allowed: true, Remaining: 5}, "", `"default";r=5;t=0`, [3]string{"5", "5", "0"}},
		{Decision{Remaining: -2, RetryAfter: time.Second, ResetAfter: time.Hour}, "1", `"default";r=0;t=1`, [3]string{"5", "0", "1"}},
		{Decision{RetryAfter: 2*time.Second + 1}, "3", `"default";r=0;t=3`, [3]string{"5", "0", "3"}},
		{Decision{RetryAfter: 1}, "1", `"default";r=0;t=1`, [3]string{"5", "0", "1"}},
		{Decision{}, "1", `"default";r=0;t=1`, [3]string{"5", "0", "1"}},
	} {
		c.d.Limit = l
		mw, err := NewMiddleware(MiddlewareOptions{Limiter: decided(c.d), Headers: HeadersBoth})
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		mw.Handler(ok200()).ServeHTTP(rec, request("203.0.113.1:1"))
		h := rec.Header()
		assert.Equal(t, c.retryAfter, h.Get("Retry-After"), "%+v", c.d)
		assert.Equal(t, c.fields, h.Get("RateLimit"), "%+v", c.d)
		assert.Equal(t, `"default";q=5;w=2`, h.Get("RateLimit-Policy"), "a window of 1.5s reads 2")
		assert.Equal(t, c.legacy, [3]string{h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Reset")}, "%+v", c.d)
		if !c.d.Allowed {
			assert.Contains(t, rec.Body.String(), "retry in "+c.retryAfter+"s")
		}
	}
	// A window shorter than a second reads as one.
	mw, err := NewMiddleware(MiddlewareOptions{Limiter: decided(Decision{Allowed: true, Limit: Limit{Events: 2, Per: time.Millisecond, Burst: 2}})})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	mw.Handler(ok200()).ServeHTTP(rec, request("203.0.113.1:1"))
	assert.Equal(t, `"default";q=2;w=1`, rec.Header().Get("RateLimit-Policy"))
}

// A policy name is a token of letters, digits and "-_.": every character
// at the edge of those ranges is told apart.
func TestMiddleware_PolicyNames(t *testing.T) {
	k := newKeyedGCRA(t, PerSecond(1))
	_, err := NewMiddleware(MiddlewareOptions{Limiter: k, Policy: "azAZ09-_."})
	require.NoError(t, err)
	for _, bad := range []string{"`", "{", "@", "[", "/", ":", " ", "é"} {
		_, err := NewMiddleware(MiddlewareOptions{Limiter: k, Policy: "p" + bad})
		require.ErrorIs(t, err, ErrInvalidConfig, "%q", bad)
	}
	for _, style := range []HeaderStyle{HeadersIETF, HeadersNone} {
		_, err := NewMiddleware(MiddlewareOptions{Limiter: k, Headers: style})
		require.NoError(t, err, "style %d", style)
	}
	_, err = NewMiddleware(MiddlewareOptions{Limiter: k, Headers: -1})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

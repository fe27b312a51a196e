package lb

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testBackend is a real HTTP server whose behaviour a test can switch:
// answer, fail with a status, hang, or crash.
type testBackend struct {
	name   string
	srv    *httptest.Server
	mode   atomic.Value // "ok", "500", "503", "hang"
	hits   atomic.Int64
	lastXF atomic.Value // X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto
	host   atomic.Value // the last request's Host
}

func newTestBackend(t *testing.T, name string) *testBackend {
	tb := &testBackend{name: name}
	tb.mode.Store("ok")
	tb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tb.hits.Add(1)
		tb.host.Store(r.Host)
		tb.lastXF.Store(r.Header.Get("X-Forwarded-For") + "|" + r.Header.Get("X-Forwarded-Host") + "|" + r.Header.Get("X-Forwarded-Proto"))
		switch tb.mode.Load().(string) {
		case "500":
			http.Error(w, "broken", http.StatusInternalServerError)
		case "503":
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case "hang":
			<-r.Context().Done()
		default:
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %s", tb.name, r.URL.Path, body)
		}
	}))
	t.Cleanup(tb.srv.Close)
	return tb
}

func (tb *testBackend) addr() string { return tb.srv.Listener.Addr().String() }

// newTestProxy puts a proxy over the backends with algorithm a and returns
// a client-facing server.
func newTestProxy(t *testing.T, bal Balancer, opts ProxyOptions) (*httptest.Server, *http.Client) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	opts.Transport = tr
	p, err := NewProxy(bal, opts)
	require.NoError(t, err)
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	return front, client
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// The proxy works with every algorithm, forwards headers, and reports every
// request to the balancer.
func TestProxyEveryAlgorithm(t *testing.T) {
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")
	for _, al := range algos {
		t.Run(al.name, func(t *testing.T) {
			bal, err := al.new([]Backend{{Addr: a.addr(), Weight: 1}, {Addr: "http://" + b.addr(), Weight: 1}}, Options{})
			require.NoError(t, err)
			front, c := newTestProxy(t, bal, ProxyOptions{})
			seen := map[string]bool{}
			for i := range 40 {
				req, _ := http.NewRequest("GET", front.URL+"/hello", nil)
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.1", i))
				resp, err := c.Do(req)
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, 200, resp.StatusCode, string(body))
				assert.True(t, strings.HasSuffix(string(body), " /hello "), string(body))
				seen[string(body[:1])] = true
			}
			if !al.affinity {
				assert.Len(t, seen, 2, "both backends serve")
			}
			xf := a.lastXF.Load().(string)
			assert.Regexp(t, `^198\.51\.\d+\.1, 127\.0\.0\.1\|127\.0\.0\.1:\d+\|http$`, xf, "X-Forwarded-* set, chain kept")
			var total uint64
			for _, s := range bal.Stats().Backends {
				assert.Zero(t, s.InFlight)
				if s.Requests > 0 {
					assert.Positive(t, s.Latency, "latency reported")
				}
				total += s.Requests
			}
			assert.Equal(t, uint64(40), total)
		})
	}
}

// The client's Host reaches the backend unless RewriteHost is set, and
// X-Forwarded-Host and X-Forwarded-Proto carry it and the scheme either
// way: a backend builds its links from the name clients use.
func TestProxyPassesHostThrough(t *testing.T) {
	a := newTestBackend(t, "a")
	for _, rewrite := range []bool{false, true} {
		t.Run(fmt.Sprint("RewriteHost=", rewrite), func(t *testing.T) {
			bal, err := NewRoundRobin([]Backend{{Addr: a.addr(), Weight: 1}}, Options{})
			require.NoError(t, err)
			front, c := newTestProxy(t, bal, ProxyOptions{RewriteHost: rewrite})
			req, err := http.NewRequest("GET", front.URL+"/h", nil)
			require.NoError(t, err)
			req.Host = "sho.rt:8080"
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("X-Forwarded-Host", "spoofed.example") // replaced, not kept
			req.Header.Set("X-Forwarded-Proto", "https")
			resp, err := c.Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			want := "sho.rt:8080"
			if rewrite {
				want = a.addr()
			}
			assert.Equal(t, want, a.host.Load())
			assert.Equal(t, "203.0.113.9, 127.0.0.1|sho.rt:8080|http", a.lastXF.Load())
		})
	}
}

// A backend that starts returning 500 mid-test is counted as failing and,
// with outlier detection, ejected, after which every request succeeds.
func TestProxyEjectsBackendReturning500(t *testing.T) {
	a, b, c := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c")
	bal, err := NewRoundRobin([]Backend{{Addr: a.addr(), Weight: 1}, {Addr: b.addr(), Weight: 1}, {Addr: c.addr(), Weight: 1}}, Options{Outlier: &OutlierOptions{MaxEjectionPercent: 50}})
	require.NoError(t, err)
	front, cl := newTestProxy(t, bal, ProxyOptions{})
	for range 9 {
		code, _ := get(t, cl, front.URL)
		require.Equal(t, 200, code)
	}
	b.mode.Store("500")
	fails := 0
	for range 30 {
		if code, body := get(t, cl, front.URL); code == 500 {
			fails++
			assert.Contains(t, body, "broken", "a 500 is passed through")
		}
	}
	assert.Equal(t, 5, fails, "five failures, then ejected")
	s := bal.Stats().Backends[1]
	assert.Equal(t, StateEjected, s.State)
	assert.Equal(t, uint64(5), s.Failures)
}

// A 503, a crashed backend and a hanging one are all retried on another
// backend for GET; the client sees 200.
func TestProxyFailsOver(t *testing.T) {
	for _, mode := range []string{"503", "crash", "hang"} {
		t.Run(mode, func(t *testing.T) {
			good, bad := newTestBackend(t, "good"), newTestBackend(t, "bad")
			bal, err := NewRoundRobin([]Backend{{Addr: good.addr(), Weight: 1}, {Addr: bad.addr(), Weight: 1}}, Options{})
			require.NoError(t, err)
			front, cl := newTestProxy(t, bal, ProxyOptions{Timeout: 200 * time.Millisecond})
			switch mode {
			case "crash":
				bad.srv.Close()
			default:
				bad.mode.Store(mode)
			}
			for range 6 {
				code, body := get(t, cl, front.URL+"/x")
				require.Equal(t, 200, code, body)
				assert.Equal(t, "good /x ", body)
			}
			s := bal.Stats().Backends
			assert.Positive(t, s[1].Failures)
			assert.Equal(t, s[1].Requests, s[1].Failures, "%s: each failed attempt reported", mode)
			assert.Zero(t, s[0].Failures)
			assert.Zero(t, s[0].InFlight+s[1].InFlight)
		})
	}
}

// POST bodies are not replayed: a failed POST is answered with a 502.
func TestProxyDoesNotRetryPost(t *testing.T) {
	good, bad := newTestBackend(t, "good"), newTestBackend(t, "bad")
	bad.srv.Close()
	bal, err := NewRoundRobin([]Backend{{Addr: bad.addr(), Weight: 1}, {Addr: good.addr(), Weight: 1}}, Options{Rand: seeded(40).Rand})
	require.NoError(t, err)
	front, cl := newTestProxy(t, bal, ProxyOptions{})
	codes := map[int]int{}
	for range 4 {
		resp, err := cl.Post(front.URL+"/p", "text/plain", strings.NewReader("payload"))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == 200 {
			assert.Equal(t, "good /p payload", string(body))
		} else {
			assert.Contains(t, string(body), "lb: backend")
		}
	}
	assert.Equal(t, map[int]int{200: 2, 502: 2}, codes)
}

// No backend available: 503 with a clear body.
func TestProxyNoBackend(t *testing.T) {
	a := newTestBackend(t, "a")
	bal, err := NewRoundRobin([]Backend{{Addr: a.addr(), Weight: 1}}, Options{DisablePanic: true})
	require.NoError(t, err)
	require.NoError(t, bal.SetHealthy(a.addr(), false))
	front, cl := newTestProxy(t, bal, ProxyOptions{})
	code, body := get(t, cl, front.URL)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "lb: no backend available: lb: no healthy backend available\n", body)
	assert.Zero(t, a.hits.Load())
}

// The active health checker and the proxy together: a backend whose health
// endpoint fails leaves rotation before any user request fails.
func TestProxyWithHealthChecker(t *testing.T) {
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")
	bal, err := NewRoundRobin([]Backend{{Addr: a.addr(), Weight: 1}, {Addr: b.addr(), Weight: 1}}, Options{})
	require.NoError(t, err)
	h, err := NewHealthChecker(bal, HealthCheckOptions{Path: "/healthz", UnhealthyThreshold: 1})
	require.NoError(t, err)
	defer h.Close()
	front, cl := newTestProxy(t, bal, ProxyOptions{Attempts: 1})
	b.mode.Store("503")
	h.CheckNow(context.Background())
	for range 6 {
		code, body := get(t, cl, front.URL+"/y")
		assert.Equal(t, 200, code)
		assert.Equal(t, "a /y ", body)
	}
}

func TestProxyBadInput(t *testing.T) {
	bal, err := NewRoundRobin(backends(1), Options{})
	require.NoError(t, err)
	_, err = NewProxy(nil, ProxyOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewProxy(bal, ProxyOptions{Attempts: -1})
	assert.ErrorContains(t, err, "attempts -1")
	_, err = NewProxy(bal, ProxyOptions{Timeout: -time.Second})
	assert.ErrorContains(t, err, "timeout -1s")
}

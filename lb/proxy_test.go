package lb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
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

// testBackends starts n test backends b0, b1, … in mode and returns them
// and their Backends.
func testBackends(t *testing.T, n int, mode string) ([]*testBackend, []Backend) {
	var tbs []*testBackend
	var bs []Backend
	for i := range n {
		tb := newTestBackend(t, fmt.Sprint("b", i))
		tb.mode.Store(mode)
		tbs = append(tbs, tb)
		bs = append(bs, Backend{Addr: tb.addr(), Weight: 1})
	}
	return tbs, bs
}

// sortedHits returns the backends' request counts, smallest first.
func sortedHits(tbs []*testBackend) []int64 {
	var hits []int64
	for _, tb := range tbs {
		hits = append(hits, tb.hits.Load())
	}
	slices.Sort(hits)
	return hits
}

func (tb *testBackend) addr() string { return tb.srv.Listener.Addr().String() }

// newTestProxy puts a proxy over the backends with algorithm a and returns
// a client-facing server.
func newTestProxy(t *testing.T, bal *Balancer, opts ProxyOptions) (*httptest.Server, *http.Client) {
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
			bal, err := New(RoundRobin{}, []Backend{{Addr: a.addr(), Weight: 1}}, Options{})
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
	bal, err := New(RoundRobin{}, []Backend{{Addr: a.addr(), Weight: 1}, {Addr: b.addr(), Weight: 1}, {Addr: c.addr(), Weight: 1}}, Options{Outlier: &OutlierOptions{MaxEjectionPercent: 50}})
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
			bal, err := New(RoundRobin{}, []Backend{{Addr: good.addr(), Weight: 1}, {Addr: bad.addr(), Weight: 1}}, Options{})
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
	bal, err := New(RoundRobin{}, []Backend{{Addr: bad.addr(), Weight: 1}, {Addr: good.addr(), Weight: 1}}, Options{Rand: seeded(40).Rand})
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

// A PUT is idempotent, but a body the proxy has read cannot be sent again:
// a failed PUT with a body is answered with a 502, not replayed empty.
func TestProxyDoesNotReplayABody(t *testing.T) {
	good, bad := newTestBackend(t, "good"), newTestBackend(t, "bad")
	bad.srv.Close()
	bal, err := New(RoundRobin{}, []Backend{{Addr: bad.addr(), Weight: 1}, {Addr: good.addr(), Weight: 1}}, Options{})
	require.NoError(t, err)
	front, cl := newTestProxy(t, bal, ProxyOptions{})
	var got []string
	for range 2 {
		req, err := http.NewRequest(http.MethodPut, front.URL+"/p", strings.NewReader("payload"))
		require.NoError(t, err)
		resp, err := cl.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, fmt.Sprint(resp.StatusCode, " ", strings.SplitN(string(body), ":", 2)[0]))
	}
	assert.ElementsMatch(t, []string{"200 good /p payload", "502 lb"}, got)
	assert.Equal(t, int64(1), good.hits.Load())
}

// A request whose body a handler in front of the proxy made replayable
// (GetBody) is retried with the whole body.
func TestProxyReplaysABodyWithGetBody(t *testing.T) {
	good, bad1, bad2 := newTestBackend(t, "good"), newTestBackend(t, "bad1"), newTestBackend(t, "bad2")
	bad1.mode.Store("503") // after the body was sent
	bad2.mode.Store("503")
	bal, err := New(RoundRobin{}, []Backend{{Addr: bad1.addr(), Weight: 1}, {Addr: bad2.addr(), Weight: 1}, {Addr: good.addr(), Weight: 1}}, Options{})
	require.NoError(t, err)
	p, err := NewProxy(bal, ProxyOptions{Attempts: 3})
	require.NoError(t, err)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		p.ServeHTTP(w, r)
	}))
	defer front.Close()
	for range 3 { // one of them tries both broken backends first
		req, err := http.NewRequest(http.MethodPut, front.URL+"/p", strings.NewReader("payload"))
		require.NoError(t, err)
		resp, err := front.Client().Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "good /p payload", string(body))
	}
	assert.Equal(t, int64(3), good.hits.Load())
}

// A request is tried on at most Attempts backends, each once; when every
// attempt fails the last answer goes back to the client.
func TestProxyStopsAfterAttempts(t *testing.T) {
	tbs, bs := testBackends(t, 4, "503")
	bal, err := New(RoundRobin{}, bs, Options{})
	require.NoError(t, err)
	front, cl := newTestProxy(t, bal, ProxyOptions{Attempts: 3})
	code, body := get(t, cl, front.URL+"/x")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "overloaded\n", body)
	assert.Equal(t, []int64{0, 1, 1, 1}, sortedHits(tbs))
}

// By default a request's key is the client's IP address without its port,
// so that a client's connections all hash to one backend.
func TestProxyKeysByClientIP(t *testing.T) {
	tbs, bs := testBackends(t, 4, "ok")
	bal, err := New(RingHash{}, bs, Options{})
	require.NoError(t, err)
	front, _ := newTestProxy(t, bal, ProxyOptions{})
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // a new connection, and port, each time
	for range 12 {
		code, body := get(t, cl, front.URL+"/k")
		require.Equal(t, 200, code, body)
	}
	assert.Equal(t, []int64{0, 0, 0, 12}, sortedHits(tbs))
}

// No backend available: 503 with a clear body.
func TestProxyNoBackend(t *testing.T) {
	a := newTestBackend(t, "a")
	bal, err := New(RoundRobin{}, []Backend{{Addr: a.addr(), Weight: 1}}, Options{DisablePanic: true})
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
	bal, err := New(RoundRobin{}, []Backend{{Addr: a.addr(), Weight: 1}, {Addr: b.addr(), Weight: 1}}, Options{})
	require.NoError(t, err)
	h, err := NewHealthChecker(bal, HealthCheckOptions{Path: "/healthz", UnhealthyThreshold: 1})
	require.NoError(t, err)
	defer h.Close(context.Background())
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
	bal, err := New(RoundRobin{}, backends(1), Options{})
	require.NoError(t, err)
	_, err = NewProxy(nil, ProxyOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewProxy(bal, ProxyOptions{Attempts: -1})
	assert.ErrorContains(t, err, "attempts -1")
	_, err = NewProxy(bal, ProxyOptions{Timeout: -time.Second})
	assert.ErrorContains(t, err, "timeout -1s")
}

// breakBody returns a handler that sends a 200's headers and the start of
// its body, then resets the connection.
func breakBody(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 512\r\nContent-Type: text/plain\r\n\r\nxxxxxxxx")
		_ = buf.Flush()
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not an orderly close
		}
		_ = conn.Close()
	}
}

// A response whose body breaks off after its headers is a failure: the
// client's response is aborted, the balancer counts a failure, the
// ErrorLog says why, and with no ErrorLog nothing is logged at all.
func TestProxyBrokenBodyIsAFailure(t *testing.T) {
	for _, withLog := range []bool{true, false} {
		t.Run(fmt.Sprint("ErrorLog=", withLog), func(t *testing.T) {
			var logged, std bytes.Buffer
			prev := log.Writer()
			log.SetOutput(&std)
			t.Cleanup(func() { log.SetOutput(prev) })
			srv := httptest.NewServer(breakBody(t))
			t.Cleanup(srv.Close)
			bal, err := New(RoundRobin{}, []Backend{{Addr: srv.Listener.Addr().String(), Weight: 1}}, Options{})
			require.NoError(t, err)
			opts := ProxyOptions{}
			if withLog {
				opts.ErrorLog = log.New(&logged, "", 0)
			}
			front, cl := newTestProxy(t, bal, opts)
			for range 3 {
				resp, err := cl.Get(front.URL)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				assert.Error(t, err, "the client sees the response break off")
			}
			s := bal.Stats().Backends[0]
			assert.Equal(t, uint64(3), s.Failures, "every broken body is a failure")
			assert.Zero(t, s.InFlight)
			if withLog {
				assert.Contains(t, logged.String(), "broke off")
			}
			assert.Empty(t, std.String(), "nothing reaches the standard logger")
		})
	}
}

// A protocol switch (WebSocket, h2c) still goes through: the proxy does not
// watch the body of a 101 answer, which is the connection itself.
func TestProxyUpgrade(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = buf.Flush()
		_, _ = io.Copy(conn, buf)
	}))
	t.Cleanup(srv.Close)
	bal, err := New(RoundRobin{}, []Backend{{Addr: srv.Listener.Addr().String(), Weight: 1}}, Options{})
	require.NoError(t, err)
	front, cl := newTestProxy(t, bal, ProxyOptions{})
	req, err := http.NewRequest("GET", front.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := cl.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	require.True(t, ok)
	_, err = rwc.Write([]byte("ping"))
	require.NoError(t, err)
	got := make([]byte, 4)
	_, err = io.ReadFull(rwc, got)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(got))
}

// mixBackend is one of the backends of TestProxyFiveBackendMix: it records
// every POST it receives, by id, before it does anything else.
func mixBackend(t *testing.T, posts *sync.Map, h http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n, _ := posts.LoadOrStore(r.Header.Get("X-Request-Id"), new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Five backends behind the proxy: two healthy, one that hangs, one that
// answers 500 and one that sends its headers and part of its body and then
// resets the connection. Outlier detection must eject the three bad ones,
// the resetting one included (a body that breaks off is a failed request),
// after which requests succeed fast; a POST is never sent to two backends.
func TestProxyFiveBackendMix(t *testing.T) {
	var posts sync.Map // request id → *atomic.Int32, how many backends got it
	okHandler := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, strings.Repeat("x", 512))
	}
	ok1 := mixBackend(t, &posts, okHandler)
	ok2 := mixBackend(t, &posts, okHandler)
	release := make(chan struct{})
	hang := mixBackend(t, &posts, func(http.ResponseWriter, *http.Request) { <-release })
	t.Cleanup(func() { close(release) }) // runs before the servers close
	fail := mixBackend(t, &posts, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	})
	reset := mixBackend(t, &posts, breakBody(t))
	addr := func(s *httptest.Server) string { return s.Listener.Addr().String() }
	bal, err := New(RoundRobin{}, []Backend{
		{Addr: addr(ok1), Weight: 1}, {Addr: addr(hang), Weight: 1}, {Addr: addr(fail), Weight: 1},
		{Addr: addr(reset), Weight: 1}, {Addr: addr(ok2), Weight: 1},
	}, Options{DisablePanic: true, Outlier: &OutlierOptions{MaxEjectionPercent: 60}})
	require.NoError(t, err)
	// A timeout a healthy backend meets however busy the machine, so that
	// after ejection only the bad backends could fail a request.
	front, cl := newTestProxy(t, bal, ProxyOptions{Timeout: time.Second})

	var ids atomic.Int64
	// run sends n requests from 8 clients, one in three a POST, and
	// returns how many succeeded (200 and the whole body) and the latencies.
	run := func(n int) (succeeded int, lat []time.Duration) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var next atomic.Int64
		for range 8 {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					id := ids.Add(1)
					method, body := http.MethodGet, io.Reader(nil)
					if id%3 == 0 {
						method, body = http.MethodPost, strings.NewReader("payload")
					}
					req, err := http.NewRequest(method, front.URL+"/m", body)
					if err != nil {
						t.Error(err)
						return
					}
					req.Header.Set("X-Request-Id", fmt.Sprint(id))
					start := time.Now()
					ok := false
					if resp, err := cl.Do(req); err == nil {
						got, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						ok = err == nil && resp.StatusCode == 200 && len(got) == 512
					}

					mu.Lock()
					lat = append(lat, time.Since(start))
					if ok {
						succeeded++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return succeeded, lat
	}

	warm, _ := run(100)
	s := bal.Stats().Backends
	t.Logf("warm-up: %d of 100 succeeded; failures recorded: hang %d of %d, 500 %d of %d, reset %d of %d",
		warm, s[1].Failures, s[1].Requests, s[2].Failures, s[2].Requests, s[3].Failures, s[3].Requests)
	for _, i := range []int{1, 2, 3} {
		assert.Equal(t, StateEjected, s[i].State, "%s ejected", s[i].Addr)
	}
	assert.Equal(t, s[3].Requests, s[3].Failures, "every broken body counted as a failure")

	const n = 400
	succeeded, lat := run(n)
	slices.Sort(lat)
	t.Logf("after ejection: %d of %d succeeded (%.1f%% errors), p99 %v", succeeded, n, 100*float64(n-succeeded)/n, lat[len(lat)*99/100])
	assert.GreaterOrEqual(t, float64(succeeded), 0.99*n, "at least 99%% succeed once the bad backends are out")
	after := bal.Stats().Backends
	for _, i := range []int{1, 2, 3} {
		// Requests fast: none waits out the hanging backend's timeout.
		assert.Equal(t, s[i].Requests, after[i].Requests, "%s, ejected for 30s, got no request", s[i].Addr)
	}
	posts.Range(func(id, n any) bool {
		assert.Equal(t, int32(1), n.(*atomic.Int32).Load(), "POST %v reached %d backends", id, n.(*atomic.Int32).Load())
		return true
	})
}

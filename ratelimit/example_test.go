package ratelimit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/sysdesign-go/sysdesign/ratelimit"
)

var start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// Guide: "Security Considerations → Rate Limiting" (token bucket).
// A token bucket passes its burst, then one event per interval; the
// decision says how long to wait.
func ExampleTokenBucket() {
	tb, err := ratelimit.NewTokenBucket(ratelimit.Limit{Events: 2, Per: time.Second, Burst: 3})
	if err != nil {
		panic(err)
	}
	for i := range 4 {
		d, _ := tb.AllowN(start, 1)
		fmt.Printf("request %d: allowed=%v remaining=%d retry-after=%v\n", i, d.Allowed, d.Remaining, d.RetryAfter)
	}
	d, _ := tb.AllowN(start.Add(500*time.Millisecond), 1)
	fmt.Println("500ms later:", d.Allowed)
	// Output:
	// request 0: allowed=true remaining=2 retry-after=0s
	// request 1: allowed=true remaining=1 retry-after=0s
	// request 2: allowed=true remaining=0 retry-after=0s
	// request 3: allowed=false remaining=0 retry-after=500ms
	// 500ms later: true
}

// Guide: "Security Considerations → Rate Limiting" (sliding window).
// The fixed window lets twice the limit through around a boundary; the
// sliding window does not.
func ExampleSlidingWindow() {
	limit := ratelimit.Limit{Events: 5, Per: time.Minute}
	fixed, _ := ratelimit.NewFixedWindow(limit)
	sliding, _ := ratelimit.NewSlidingWindow(limit)
	nFixed, nSliding := 0, 0
	for i := range 10 { // 10 requests in the 10 seconds around 12:01:00
		at := start.Add(55*time.Second + time.Duration(i)*time.Second)
		if d, _ := fixed.AllowN(at, 1); d.Allowed {
			nFixed++
		}
		if d, _ := sliding.AllowN(at, 1); d.Allowed {
			nSliding++
		}
	}
	fmt.Println("fixed window:", nFixed, "sliding window:", nSliding)
	// Output: fixed window: 10 sliding window: 5
}

// Guide: "Security Considerations → Rate Limiting" (leaky bucket).
// The leaky bucket as a queue: reservations leave one interval apart.
func ExampleLeakyBucket_ReserveN() {
	lb, _ := ratelimit.NewLeakyBucket(ratelimit.Limit{Events: 4, Per: time.Second, Burst: 4})
	for range 4 {
		d, _ := lb.ReserveN(start, 1)
		fmt.Println("go in", d.RetryAfter)
	}
	// Output:
	// go in 0s
	// go in 250ms
	// go in 500ms
	// go in 750ms
}

// Guide: "Security Considerations → Rate Limiting".
// Several limits on one key: a burst limit and a daily quota. A request
// the burst limit refuses costs nothing from the quota.
func ExampleMulti() {
	m, _ := ratelimit.NewMulti(ratelimit.AlgGCRA, []ratelimit.Limit{
		{Events: 1, Per: time.Second, Burst: 2},
		ratelimit.PerDay(3),
	})
	for i := range 5 {
		d, _ := m.AllowN(start, 1)
		fmt.Printf("%d: allowed=%v by %v\n", i, d.Allowed, d.Limit)
	}
	d, _ := m.AllowN(start.Add(time.Second), 1)
	fmt.Printf("1s later: allowed=%v, %d left today\n", d.Allowed, d.Remaining)
	// Output:
	// 0: allowed=true by 1/1s burst 2
	// 1: allowed=true by 1/1s burst 2
	// 2: allowed=false by 1/1s burst 2
	// 3: allowed=false by 1/1s burst 2
	// 4: allowed=false by 1/1s burst 2
	// 1s later: allowed=true, 0 left today
}

// Guide: "Security Considerations → Rate Limiting".
// Bad input is an error, never a panic or an endless wait.
func ExampleGCRA_WaitN() {
	g, _ := ratelimit.NewGCRA(ratelimit.PerSecond(5))
	err := g.WaitN(context.Background(), 6)
	fmt.Println(err)
	_, err = ratelimit.NewGCRA(ratelimit.Limit{Events: 5, Per: 0, Burst: 5})
	fmt.Println(err)
	// Output:
	// ratelimit: request exceeds the limit: n=6 is more than the 5 the limit can ever grant at once
	// ratelimit: invalid configuration: period (window) must be positive, got 0s
}

// Guide: "Security Considerations → Rate Limiting" (IP-based limiting);
// "Performance & Scalability → API Design" (rate limiting).
// Per-IP limits behind a trusted load balancer, with the IETF headers.
func ExampleMiddleware() {
	keyed, _ := ratelimit.NewKeyed(ratelimit.AlgGCRA, ratelimit.KeyedOptions{}, ratelimit.PerMinute(2))
	ip, _ := ratelimit.NewClientIP(ratelimit.ClientIPOptions{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	mw, _ := ratelimit.NewMiddleware(ratelimit.MiddlewareOptions{Limiter: keyed, Key: ip.Key})
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") }))
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "10.0.0.7:41000"                         // the load balancer
		r.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.9") // a spoofed entry, then the real client
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%d RateLimit: %s Retry-After: %q\n", w.Code, w.Header().Get("RateLimit"), w.Header().Get("Retry-After"))
	}
	fmt.Println("keys:", keyed.Stats().Keys)
	// Output:
	// 200 RateLimit: "default";r=1;t=30 Retry-After: ""
	// 200 RateLimit: "default";r=0;t=60 Retry-After: ""
	// 429 RateLimit: "default";r=0;t=30 Retry-After: "30"
	// keys: 1
}

// One limit for the whole service, whoever the client: a token bucket
// under one key for every request, in front of a handler.
//
// Guide: "Performance & Scalability → API Design → Rate Limiting: Prevent
// abuse"; "Performance Considerations → Throughput Optimization → Message
// Queues → Rate Limiting: Control request flow".
func ExampleMiddleware_oneLimit() {
	service, _ := ratelimit.NewKeyed(ratelimit.AlgTokenBucket, ratelimit.KeyedOptions{}, ratelimit.PerSecond(2))
	mw, _ := ratelimit.NewMiddleware(ratelimit.MiddlewareOptions{
		Limiter: service,
		Key:     func(*http.Request) (string, error) { return "service", nil },
	})
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") }))
	for _, client := range []string{"192.0.2.1:1000", "192.0.2.2:1000", "192.0.2.3:1000"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = client
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(client, w.Code)
	}
	// Output:
	// 192.0.2.1:1000 200
	// 192.0.2.2:1000 200
	// 192.0.2.3:1000 429
}

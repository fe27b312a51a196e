// Command ratelimit runs a small HTTP API protected by per-IP and per-user
// rate limits, then a client that calls it until it is refused, printing
// each status and the rate-limit headers the server sent.
//
// Guide: "Security Considerations → Rate Limiting" (IP-based and user-based
// limiting); "Performance & Scalability → API Design" (rate limiting).
//
//	go run ./examples/ratelimit                 # in-memory limits
//	go run ./examples/ratelimit -redis 127.0.0.1:6379   # limits shared through Redis
//	go run ./examples/ratelimit -serve :8080    # just serve; try curl -i
//
// Routes:
//
//	GET /public        per client IP (IPv6 grouped by /64): 5 per 10s
//	GET /api/orders    per user (X-API-Key header): 3 per second, and 20 per hour
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/ratelimit"
	"github.com/sysdesign-go/sysdesign/ratelimit/redislimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ratelimit:", err)
		os.Exit(1)
	}
}

// users maps API keys to users; a real service would look them up.
var users = map[string]string{"key-alice": "alice", "key-bob": "bob"}

// userKey is the per-user key function: the user owning the API key.
func userKey(r *http.Request) (string, error) {
	u, ok := users[r.Header.Get("X-API-Key")]
	if !ok {
		return "", errors.New("unknown or missing API key")
	}
	return "user:" + u, nil
}

// newHandler builds the API with its two limits.
func newHandler(rdb redis.UniversalClient, prefix string) (http.Handler, error) {
	perIP := ratelimit.Limit{Events: 5, Per: 10 * time.Second, Burst: 5}
	perUser := []ratelimit.Limit{{Events: 3, Per: time.Second, Burst: 3}, {Events: 20, Per: time.Hour, Burst: 20}}
	var ipLimiter, userLimiter ratelimit.KeyedLimiter
	if rdb != nil {
		var err error
		if ipLimiter, err = redislimit.New(rdb, ratelimit.AlgSlidingWindow, redislimit.Options{Prefix: prefix + "ip:"}, perIP); err != nil {
			return nil, err
		}
		if userLimiter, err = redislimit.New(rdb, ratelimit.AlgGCRA, redislimit.Options{Prefix: prefix + "user:", OnFailure: redislimit.FailClosed}, perUser...); err != nil {
			return nil, err
		}
	} else {
		ip, err := ratelimit.NewKeyed(ratelimit.AlgSlidingWindow, ratelimit.KeyedOptions{MaxKeys: 100_000}, perIP)
		if err != nil {
			return nil, err
		}
		user, err := ratelimit.NewKeyed(ratelimit.AlgGCRA, ratelimit.KeyedOptions{}, perUser...)
		if err != nil {
			return nil, err
		}
		ipLimiter, userLimiter = ip, user
	}
	clientIP, err := ratelimit.NewClientIP(ratelimit.ClientIPOptions{}) // no proxy in front: trust no header
	if err != nil {
		return nil, err
	}
	public, err := ratelimit.NewMiddleware(ratelimit.MiddlewareOptions{Limiter: ipLimiter, Key: clientIP.Key, Policy: "per-ip"})
	if err != nil {
		return nil, err
	}
	api, err := ratelimit.NewMiddleware(ratelimit.MiddlewareOptions{
		Limiter: userLimiter, Key: userKey, Policy: "per-user", Headers: ratelimit.HeadersBoth, PartitionKey: true,
		OnError: func(w http.ResponseWriter, _ *http.Request, err error) {
			if errors.Is(err, ratelimit.ErrKeyFunc) {
				http.Error(w, "401 unauthorized: send X-API-Key", http.StatusUnauthorized)
				return
			}
			http.Error(w, "rate limiter unavailable", http.StatusServiceUnavailable)
		},
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /public", public.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "public data\n")
	})))
	mux.Handle("GET /api/orders", api.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"orders":[]}`+"\n")
	})))
	return mux, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ratelimit", flag.ContinueOnError)
	redisAddr := fs.String("redis", "", "share limits through the Redis at this address")
	serve := fs.String("serve", "", "serve on this address until interrupted instead of running the demo client")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var rdb redis.UniversalClient // nil: in-memory limits
	prefix := fmt.Sprintf("sysdesign-example:ratelimit:%d:", time.Now().UnixNano())
	if *redisAddr != "" {
		c := redis.NewClient(&redis.Options{Addr: *redisAddr, ContextTimeoutEnabled: true})
		defer func() { _ = c.Close() }()
		rdb = c
	}
	h, err := newHandler(rdb, prefix)
	if err != nil {
		return err
	}
	addr := "127.0.0.1:0"
	if *serve != "" {
		addr = *serve
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	if *serve != "" {
		fmt.Fprintf(out, "serving on %s: try  curl -i %s/public  and  curl -i -H 'X-API-Key: key-alice' %s/api/orders\n", base, base, base)
		<-ctx.Done()
	} else {
		err = demo(ctx, base, out)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	if rdb != nil { // remove the demo's keys
		iter := rdb.Scan(sctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(sctx) {
			_ = rdb.Del(sctx, iter.Val()).Err()
		}
	}
	return err
}

// demo calls both routes until refused and prints what the client sees.
func demo(ctx context.Context, base string, out io.Writer) error {
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	call := func(path, apiKey string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return err
		}
		if apiKey != "" {
			req.Header.Set("X-API-Key", apiKey)
		}
		req.Header.Set("X-Forwarded-For", "1.2.3.4") // spoofed: ignored, no trusted proxy
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		fmt.Fprintf(out, "GET %-12s %-10s → %d", path, apiKey, resp.StatusCode)
		for _, h := range []string{"RateLimit-Policy", "RateLimit", "X-RateLimit-Remaining", "Retry-After"} {
			if v := resp.Header.Get(h); v != "" {
				fmt.Fprintf(out, "  %s: %s", h, v)
			}
		}
		fmt.Fprintln(out)
		if resp.StatusCode == http.StatusTooManyRequests {
			fmt.Fprintf(out, "    body: %s\n", strings.TrimSpace(string(body)))
		}
		return nil
	}
	fmt.Fprintln(out, "-- per-IP limit on /public (5 per 10s):")
	for range 6 {
		if err := call("/public", ""); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "    (t is the seconds until the whole quota is back, up to two windows: a sliding window still counts the previous window's requests, fading out over this one)")
	fmt.Fprintln(out, "-- per-user limits on /api/orders (3/s and 20/h); alice, then bob, then no key:")
	for range 4 {
		if err := call("/api/orders", "key-alice"); err != nil {
			return err
		}
	}
	if err := call("/api/orders", "key-bob"); err != nil {
		return err
	}
	return call("/api/orders", "")
}

// Command shortener is the URL shortener of the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Real-World System
// Designs → 1. URL Shortener Service", as a real HTTP service built from
// this library's packages (see package service for the design):
//
//	go run ./examples/shortener                       # one instance on :8080, data in ./shortener-data
//	go run ./examples/shortener -debug-addr 127.0.0.1:6060   # and net/http/pprof there
//	REDIS_ADDR=127.0.0.1:6379 go run ./examples/shortener -cluster 3
//	go run ./examples/shortener -cluster 3            # three instances behind the lb proxy on :8080
//
//	curl -s localhost:8080/api/v1/urls -H 'Content-Type: application/json' -d '{"url":"https://go.dev/doc/"}'
//	curl -si localhost:8080/<code>
//	curl -s localhost:8080/api/v1/urls/<code>/stats
//	curl -s localhost:8080/metrics
//
// Short URLs name the address the client used: -base-url if set, else the
// X-Forwarded-Host and -Proto of a trusted proxy (-trusted-proxies; the
// -cluster balancer on loopback is one), else the request's Host. Redis
// keys live under a namespace of the deployment (-namespace; by default an
// ID written in the data directory when it is created), so deployments
// sharing a Redis never serve each other's links.
//
// Every flag has an environment variable (SHORTENER_<FLAG>, upper case,
// '-' as '_'); flags win. REDIS_ADDR enables the Redis L2 cache, cross-
// process invalidation and the global rate limit. SIGINT or SIGTERM stops
// gracefully: in-flight requests finish and every counted click is written.
//
// The instances of -cluster run in this process, over one store: a delete
// on one evicts the code from the others' L1 through an in-process bus,
// with or without Redis. Processes reach each other's L1 only through
// Redis; without it, another process serves a deleted code from its L1
// until the entry expires (-cache-ttl).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/shortener/service"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "shortener:", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx ends, then shuts down.
// ready, if not nil, receives the cluster once it serves.
func run(ctx context.Context, args []string, logOut io.Writer, ready func(*service.Cluster)) error {
	fs := flag.NewFlagSet("shortener", flag.ContinueOnError)
	fs.SetOutput(logOut)
	var (
		addr      = fs.String("addr", "127.0.0.1:8080", "listen address (of the load balancer with -cluster)")
		cluster   = fs.Int("cluster", 1, "number of instances, all in this process over one store; more than 1 puts them behind the lb proxy on -addr")
		dataDir   = fs.String("data", "shortener-data", "data directory (one bbolt file per shard)")
		shards    = fs.Int("shards", 4, "number of storage shards (fixed when the data directory is created)")
		strategy  = fs.String("strategy", service.StrategyCounter, "code generation: counter (base62 of block-allocated IDs) or hash (truncated SHA-256)")
		baseURL   = fs.String("base-url", "", "public base of short URLs, e.g. https://sho.rt (default: the X-Forwarded-Proto and -Host of a trusted proxy, else http://<Host header>)")
		trusted   = fs.String("trusted-proxies", "", "comma-separated addresses or CIDRs of proxies whose X-Forwarded-For/-Host/-Proto are believed (-cluster adds loopback, its own balancer)")
		namespace = fs.String("namespace", "", "Redis key namespace of this deployment (default: the ID stored in the data directory, new with every new directory)")
		redirect  = fs.Int("redirect", 302, "redirect status: 302 keeps clicks countable, 301 lets browsers cache for good")
		rate      = fs.Int("create-rate", 10, "creations per second per client IP")
		burst     = fs.Int("create-burst", 20, "creation burst per client IP")
		cacheSize = fs.Int("cache-size", 100_000, "L1 cache entries")
		cacheTTL  = fs.Duration("cache-ttl", time.Hour, "lifetime of cached links; bounds how long another process without Redis serves a deleted link")
		noCache   = fs.Bool("no-cache", false, "read every redirect from the store (for load tests)")
		storeLat  = fs.Duration("store-latency", 0, "delay added to every store read, standing in for a networked database (for load tests)")
		debugAddr = fs.String("debug-addr", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060); empty: off")
		redisAddr = fs.String("redis", os.Getenv("REDIS_ADDR"), "Redis address for the L2 cache and global limits (env REDIS_ADDR); empty: none")
		admin     = fs.String("admin-token", "", "bearer token that allows DELETE /api/v1/urls/{code}; empty: deletion off")
		verbose   = fs.Bool("v", false, "log at debug level")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: shortener [flags]

A URL shortener: POST /api/v1/urls, GET /{code}, GET /api/v1/urls/{code}/stats, /healthz, /metrics.
Every flag may be set as SHORTENER_<FLAG> (e.g. SHORTENER_DATA); REDIS_ADDR sets -redis.

Cache invalidation: the -cluster instances run in this process, and a delete on one
evicts the link from the others' L1 in process, with or without Redis. Separate
processes invalidate each other only through Redis (-redis); without it, a process
serves a link deleted elsewhere from its L1 until the entry expires (-cache-ttl).

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := fromEnv(fs); err != nil {
		return err
	}
	if *cluster < 1 {
		return fmt.Errorf("-cluster %d: need at least one instance", *cluster)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	if *cacheTTL <= 0 {
		return fmt.Errorf("-cache-ttl %v: must be positive", *cacheTTL)
	}
	if *storeLat < 0 {
		return fmt.Errorf("-store-latency %v: must not be negative", *storeLat)
	}
	proxies, err := parsePrefixes(*trusted)
	if err != nil {
		return fmt.Errorf("-trusted-proxies: %w", err)
	}
	cfg := service.ClusterConfig{
		Addr: *addr, Instances: *cluster, DataDir: *dataDir, Shards: *shards, StoreLatency: *storeLat,
		Service: service.Config{
			BaseURL: *baseURL, Strategy: *strategy, Redirect: *redirect, CacheSize: *cacheSize, CacheTTL: *cacheTTL, NoCache: *noCache,
			CreateLimit: ratelimit.Limit{Events: *rate, Per: time.Second, Burst: *burst},
			AdminToken:  *admin, Logger: logger, TrustedProxies: proxies, Namespace: *namespace,
		},
	}
	if *redisAddr != "" {
		rdb := redis.NewClient(&redis.Options{Addr: *redisAddr, ContextTimeoutEnabled: true, DialTimeout: 200 * time.Millisecond})
		defer rdb.Close()
		cfg.Service.Redis = rdb
	}
	if *debugAddr != "" {
		_, stopDebug, err := serveDebug(*debugAddr, logger)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	c, err := service.Start(ctx, cfg)
	if err != nil {
		return err
	}
	ns := *namespace
	if ns == "" {
		ns = c.Storage().ID()
	}
	logger.Info("serving", "url", c.URL(), "instances", c.InstanceURLs, "strategy", cfg.Service.Strategy, "redis", *redisAddr != "", "data", *dataDir, "namespace", ns)
	if ready != nil {
		ready(c)
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-c.Err():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return errors.Join(serveErr, c.Close(sctx))
}

// serveDebug serves the net/http/pprof handlers on addr, apart from the
// service's listener, until stop is called; url is where they are.
func serveDebug(addr string, logger *slog.Logger) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("-debug-addr %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile streams for its whole ?seconds=.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("debug listener stopped", "err", err)
		}
	}()
	url = "http://" + ln.Addr().String() + "/debug/pprof/"
	logger.Info("serving pprof", "url", url)
	return url, func() { _ = srv.Close(); <-done }, nil
}

// parsePrefixes parses a comma-separated list of addresses and CIDRs.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// fromEnv sets every flag not given on the command line from its
// SHORTENER_<FLAG> environment variable, if set.
func fromEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "SHORTENER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && !given[f.Name] && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

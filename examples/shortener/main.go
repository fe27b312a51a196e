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
// Locked down, as "Security & Reliability → Security Considerations" asks:
// creation only with an API key (each key limited on its own),
// administrative requests (delete, backup) only with a token of the admin
// role, each audit-logged; secrets come from the environment:
//
//	SHORTENER_TOKEN_SECRET=0123456789abcdef0123456789abcdef SHORTENER_API_KEYS=acme=acme-key-0123456789 go run ./examples/shortener -data /tmp/locked
//	curl -s localhost:8080/api/v1/urls -H 'X-API-Key: acme-key-0123456789' -H 'Content-Type: application/json' -d '{"url":"https://go.dev/"}'
//	go run ./examples/shortener -issue-admin-token ops -token-secret <secret>   # prints a token
//	curl -s -X DELETE localhost:8080/api/v1/urls/<code> -H 'Authorization: Bearer <token>'
//	curl -s localhost:8080/api/v1/admin/backup -H 'Authorization: Bearer <token>' -o backup.bin
//	go run ./examples/shortener -restore backup.bin -data <new-dir>
//
// -tls-cert and -tls-key serve HTTPS, with HSTS; with -cluster the balancer
// terminates TLS and the instances learn the scheme from it.
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
	"crypto/tls"
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

	"github.com/sysdesign-go/sysdesign/examples/internal/flagenv"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/examples/shortener/service"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "shortener:", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx ends, then shuts down;
// it prints a token it was asked to issue on out, and logs on logOut.
// ready, if not nil, receives the cluster once it serves.
func run(ctx context.Context, args []string, out, logOut io.Writer, ready func(*service.Cluster)) error {
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
		rate      = fs.Int("create-rate", 10, "creations per second per client IP (per API key with -api-keys)")
		burst     = fs.Int("create-burst", 20, "creation burst per client IP (per API key with -api-keys)")
		cacheSize = fs.Int("cache-size", 100_000, "L1 cache entries")
		cacheTTL  = fs.Duration("cache-ttl", time.Hour, "lifetime of cached links; bounds how long another process without Redis serves a deleted link")
		noCache   = fs.Bool("no-cache", false, "read every redirect from the store (for load tests)")
		storeLat  = fs.Duration("store-latency", 0, "delay added to every store read, standing in for a networked database (for load tests)")
		debugAddr = fs.String("debug-addr", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060); empty: off")
		redisAddr = fs.String("redis", os.Getenv("REDIS_ADDR"), "Redis address for the L2 cache and global limits (env REDIS_ADDR); empty: none")
		secret    = fs.String("token-secret", "", "HS256 secret (32 bytes or more) of the bearer tokens of administrative requests (delete, backup); set it through SHORTENER_TOKEN_SECRET, not the command line; empty: administrative requests refused")
		issueTok  = fs.String("issue-admin-token", "", "print a token of the admin role for this subject, signed with -token-secret, valid for -token-ttl, and exit")
		tokenTTL  = fs.Duration("token-ttl", time.Hour, "lifetime of -issue-admin-token's token")
		apiKeys   = fs.String("api-keys", "", "comma-separated name=key pairs: creation then needs a key in X-API-Key, and each key is limited to -create-rate on its own; set it through SHORTENER_API_KEYS; empty: anyone may create, limited per IP")
		origins   = fs.String("allowed-origins", "", "comma-separated origins (https://app.example) whose pages may call the API from a browser; empty: same-origin only")
		tlsCert   = fs.String("tls-cert", "", "PEM certificate file: serve HTTPS on -addr (with -tls-key); responses then carry HSTS")
		tlsKey    = fs.String("tls-key", "", "PEM private key file of -tls-cert")
		restore   = fs.String("restore", "", "restore the backup in this file (from GET /api/v1/admin/backup) into -data, which must not exist or be empty, and exit")
		verbose   = fs.Bool("v", false, "log at debug level")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: shortener [flags]

A URL shortener: POST /api/v1/urls, GET /{code}, GET /api/v1/urls/{code}/stats, /healthz, /metrics;
with -token-secret, DELETE /api/v1/urls/{code} and GET /api/v1/admin/backup for admin tokens.
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
	if err := flagenv.Set(fs, "SHORTENER"); err != nil {
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
	var tokens *httpsec.Tokens
	if *secret != "" {
		if tokens, err = httpsec.NewTokens(httpsec.TokenOptions{Issuer: "shortener", Audience: "shortener-admin", Secret: []byte(*secret), Leeway: 30 * time.Second}); err != nil {
			return fmt.Errorf("-token-secret: %w", err)
		}
	}
	if *issueTok != "" {
		if tokens == nil {
			return errors.New("-issue-admin-token needs -token-secret (or SHORTENER_TOKEN_SECRET)")
		}
		tok, err := tokens.Issue(*issueTok, []string{service.AdminRole}, *tokenTTL)
		if err != nil {
			return fmt.Errorf("-issue-admin-token: %w", err)
		}
		_, err = fmt.Fprintln(out, tok)
		return err
	}
	if *restore != "" {
		return restoreBackup(ctx, *restore, *dataDir, logger)
	}
	keys, err := parseKeys(*apiKeys)
	if err != nil {
		return fmt.Errorf("-api-keys: %w", err)
	}
	var tlsCfg *tls.Config
	switch {
	case (*tlsCert == "") != (*tlsKey == ""):
		return errors.New("-tls-cert and -tls-key go together")
	case *tlsCert != "":
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("-tls-cert %s, -tls-key %s: %w", *tlsCert, *tlsKey, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	cfg := service.ClusterConfig{
		Addr: *addr, Instances: *cluster, DataDir: *dataDir, Shards: *shards, StoreLatency: *storeLat, TLS: tlsCfg,
		Service: service.Config{
			BaseURL: *baseURL, Strategy: *strategy, Redirect: *redirect, CacheSize: *cacheSize, CacheTTL: *cacheTTL, NoCache: *noCache,
			CreateLimit: ratelimit.Limit{Events: *rate, Per: time.Second, Burst: *burst},
			Tokens:      tokens, APIKeys: keys, AllowedOrigins: splitList(*origins),
			Logger: logger, TrustedProxies: proxies, Namespace: *namespace,
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

// restoreBackup restores the backup in file into the data directory dir.
func restoreBackup(ctx context.Context, file, dir string, logger *slog.Logger) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("-restore: %w", err)
	}
	defer f.Close()
	if err := service.RestoreStorage(ctx, f, dir); err != nil {
		return fmt.Errorf("-restore %s: %w", file, err)
	}
	logger.Info("restored", "backup", file, "data", dir)
	return nil
}

// parseKeys parses comma-separated name=key pairs.
func parseKeys(list string) (map[string]string, error) {
	var keys map[string]string
	for _, f := range splitList(list) {
		name, key, ok := strings.Cut(f, "=")
		if !ok || name == "" || key == "" {
			return nil, fmt.Errorf("%q is not name=key", truncate(f))
		}
		if keys == nil {
			keys = map[string]string{}
		}
		if _, dup := keys[name]; dup {
			return nil, fmt.Errorf("key name %q given twice", name)
		}
		keys[name] = key
	}
	return keys, nil
}

// truncate shortens what may be a secret for an error message.
func truncate(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// splitList splits a comma-separated list, dropping empty fields.
func splitList(list string) []string {
	var out []string
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
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

// Command feed is the social media feed of the guide System Design Round
// — Principal Engineer Interview Preparation, "Real-World System Designs
// → 3. Social Media Feed", as an HTTP service on Redis built from this
// library's packages (see package service for the design):
//
//	REDIS_ADDR=127.0.0.1:6379 go run ./examples/feed -addr 127.0.0.1:8095 -demo-users alice,bob
//	curl -s localhost:8095/healthz
//	curl -s localhost:8095/api/v1/openapi.json
//	REDIS_ADDR=127.0.0.1:6379 go run ./examples/feed -addr 127.0.0.1:8095 -strategy read
//	curl -s localhost:8095/healthz
//
// -strategy chooses the feed generation: write (fan-out on write), read
// (fan-out on read) or hybrid:N (push for authors with fewer than N
// followers, pull the others at read time; the default is hybrid:10000).
// -demo-users creates the users' profiles and prints a bearer token for
// each; every /api/v1 route takes one (Authorization: Bearer <token>),
// and a user posts, follows and reads a home timeline only as themselves.
// -redis-cluster takes a Redis Cluster's seed addresses instead of
// -redis. -redis-shards places users' data (posts, follows, timelines) on
// several Redis servers (host:port,host:port,...) by a consistent-hash
// ring on the user ID; -redis keeps the rest.
//
// Every flag has an environment variable (FEED_<FLAG>, upper case, '-' as
// '_'); flags win. SIGINT or SIGTERM stops gracefully: in-flight requests
// and fan-out jobs finish, queued jobs stay in Redis for the next start.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/blob"
	"github.com/sysdesign-go/sysdesign/examples/internal/flagenv"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "feed:", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx ends, then shuts down. It
// prints the demo users' tokens on out and logs on logOut. ready, if not
// nil, receives the service's URL once it serves.
func run(ctx context.Context, args []string, out, logOut io.Writer, ready func(url string)) error {
	fs := flag.NewFlagSet("feed", flag.ContinueOnError)
	fs.SetOutput(logOut)
	redisAddr := os.Getenv("REDIS_ADDR")
	if redisAddr == "" {
		redisAddr = "127.0.0.1:6379"
	}
	var (
		addr      = fs.String("addr", "127.0.0.1:8095", "listen address")
		rAddr     = fs.String("redis", redisAddr, "Redis address (env REDIS_ADDR)")
		cluster   = fs.String("redis-cluster", "", "comma-separated seed addresses of a Redis Cluster, used instead of -redis")
		shards    = fs.String("redis-shards", "", "comma-separated Redis addresses to place users' data on (posts, follows, timelines; a consistent-hash ring on the user ID); empty: all on -redis, which keeps the sequence, fan-out queues, post stream and pub/sub either way")
		prefix    = fs.String("prefix", "feed:", "Redis key prefix of this deployment")
		strategy  = fs.String("strategy", "hybrid:10000", "feed generation: write (fan-out on write), read (fan-out on read) or hybrid:N (pull authors with N followers or more)")
		halfLife  = fs.Duration("rank-half-life", 0, "rank each home page by score, recency halving every this long; 0: chronological")
		likeW     = fs.Float64("like-weight", 1, "weight of ln(1+likes) in the ranking score")
		replyW    = fs.Float64("reply-weight", 2, "weight of ln(1+replies) in the ranking score")
		pageTTL   = fs.Duration("page-ttl", 0, "cache each user's first home page in process and in Redis for this long (its staleness for pulled posts, likes and replies); 0: no page cache")
		timeline  = fs.Int("timeline-cap", 800, "entries kept per home timeline")
		queues    = fs.Int("queues", 2, "fan-out Streams, authors placed on them by Maglev")
		rate      = fs.Int("write-rate", 10, "writes (posts, follows) per second per user")
		burst     = fs.Int("write-burst", 20, "write burst per user")
		searchDir = fs.String("search", "feed-index", "directory of this instance's full-text index (bleve), fed from the post stream; empty: search off")
		searchMax = fs.Int("search-concurrency", 8, "searches run at once; more are answered 503 at once (a bulkhead)")
		searchTO  = fs.Duration("search-timeout", 2*time.Second, "bound on one search of the index")
		mediaDir  = fs.String("media", "feed-media", "directory of the content-addressed media store; empty: uploads off")
		maxMedia  = fs.Int64("max-media", blob.DefaultMaxBytes, "largest upload in bytes")
		tokenKey  = fs.String("token-key", "", "hex key (≥ 32 bytes) signing bearer tokens; set it through FEED_TOKEN_KEY; empty: a random key, so tokens last one run")
		demoUsers = fs.String("demo-users", "", "comma-separated users to create and print tokens for")
		verbose   = fs.Bool("v", false, "log at debug level")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: feed [flags]\n\nA social media feed: posts, follows, user and home timelines under /api/v1 (OpenAPI at /api/v1/openapi.json), /healthz, /metrics.\nEvery flag may be set as FEED_<FLAG> (e.g. FEED_STRATEGY); REDIS_ADDR sets -redis.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := flagenv.Set(fs, "FEED"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	st, err := fanout.Parse(*strategy)
	if err != nil {
		return fmt.Errorf("-strategy: %w", err)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	key := make([]byte, 32)
	if *tokenKey == "" {
		_, _ = rand.Read(key)
	} else if key, err = hex.DecodeString(*tokenKey); err != nil {
		return fmt.Errorf("-token-key: not hex: %w", err)
	}
	tokens, err := service.NewTokens(key)
	if err != nil {
		return fmt.Errorf("-token-key: %w", err)
	}
	var media *blob.Store
	if *mediaDir != "" {
		if media, err = blob.New(*mediaDir, blob.Options{MaxBytes: *maxMedia}); err != nil {
			return fmt.Errorf("-media: %w", err)
		}
	}
	var rdb redis.UniversalClient
	if *cluster != "" {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(*cluster, ","), ContextTimeoutEnabled: true, DialTimeout: 200 * time.Millisecond})
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: *rAddr, ContextTimeoutEnabled: true, DialTimeout: 200 * time.Millisecond})
	}
	defer rdb.Close()
	var shardDBs []redis.UniversalClient
	for i, a := range strings.Split(*shards, ",") {
		if a = strings.TrimSpace(a); a == "" {
			if *shards != "" {
				return fmt.Errorf("-redis-shards %q: address %d is empty", *shards, i)
			}
			continue
		}
		db := redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true, DialTimeout: 200 * time.Millisecond})
		defer db.Close()
		shardDBs = append(shardDBs, db)
	}
	svc, err := service.New(ctx, service.Config{
		Redis: rdb, Shards: shardDBs, Prefix: *prefix, Strategy: st, Ranking: service.Ranking{HalfLife: *halfLife, LikeWeight: *likeW, ReplyWeight: *replyW}, TimelineCap: *timeline, PageTTL: *pageTTL, SearchDir: *searchDir, SearchConcurrency: *searchMax, SearchTimeout: *searchTO, Queues: *queues,
		Authenticate: tokens.User, Media: media, WriteLimit: ratelimit.Limit{Events: *rate, Per: time.Second, Burst: *burst}, Logger: logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = svc.Close(context.Background())
		return err
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	for _, u := range strings.Split(*demoUsers, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if err := demoUser(ctx, url, tokens, u, out); err != nil {
			logger.Warn("demo user", "user", u, "err", err)
		}
	}
	logger.Info("serving", "url", url, "strategy", st.String(), "redis", *rAddr, "cluster", *cluster, "shards", len(shardDBs))
	if ready != nil {
		ready(url)
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// The service first ends its event streams, which Shutdown would wait for.
	return errors.Join(serveErr, svc.Close(sctx), srv.Shutdown(sctx))
}

// demoUser creates user's profile through the API (an existing one is
// kept) and prints a token for it.
func demoUser(ctx context.Context, url string, tokens *service.Tokens, user string, out io.Writer) error {
	tok, err := tokens.Issue(user, 24*time.Hour)
	if err != nil {
		return err
	}
	body := fmt.Sprintf(`{"id":%q,"name":%q}`, user, user)
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/api/v1/users", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
		return fmt.Errorf("creating the profile: %s", resp.Status)
	}
	_, err = fmt.Fprintf(out, "%s\t%s\n", user, tok)
	return err
}

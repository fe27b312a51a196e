// Command chat is the chat application of the guide System Design
// Round — Principal Engineer Interview Preparation, "Real-World System
// Designs → 2. Chat Application", as real gateways built from this
// library's packages (see package service for the design):
//
//	REDIS_ADDR=127.0.0.1:6379 go run ./examples/chat -addr 127.0.0.1:8090 -demo-users alice,bob              # one gateway
//	REDIS_ADDR=127.0.0.1:6379 go run ./examples/chat -addr 127.0.0.1:8090 -cluster 3 -demo-users alice,bob   # three behind the lb proxy
//
// The program prints a page URL per demo user (the token is in the URL's
// fragment); open two of them to chat. The protocol is in package
// service: WebSocket on /api/v1/ws, SSE on /api/v1/events with POST
// /api/v1/messages and /api/v1/acks, groups, history, keys and media
// under /api/v1, /healthz and /metrics.
//
// Every flag has an environment variable (CHAT_<FLAG>, upper case, '-' as
// '_'); flags win. SIGINT or SIGTERM drains the gateways: clients are told
// to reconnect (1012) and nothing stored is lost.
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
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/blob"
	"github.com/sysdesign-go/sysdesign/examples/internal/flagenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run starts the gateways and blocks until ctx ends, then drains them.
// ready, if not nil, receives the cluster and the demo users' page URLs
// once it serves.
func run(ctx context.Context, args []string, logOut io.Writer, ready func(*service.Cluster, map[string]string)) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(logOut)
	redisAddr := os.Getenv("REDIS_ADDR")
	if redisAddr == "" {
		redisAddr = "127.0.0.1:6379"
	}
	var (
		addr      = fs.String("addr", "127.0.0.1:8090", "listen address (of the load balancer with -cluster)")
		cluster   = fs.Int("cluster", 1, "number of gateways in this process; more than 1 puts them behind the lb proxy (Maglev on the user) on -addr")
		rAddr     = fs.String("redis", redisAddr, "Redis address (env REDIS_ADDR)")
		shards    = fs.String("redis-shards", "", "comma-separated Redis addresses to place conversations and users on (a consistent-hash ring); empty: all state on -redis, which carries pub/sub either way")
		prefix    = fs.String("prefix", "chat:", "Redis key prefix of this deployment")
		delivery  = fs.String("delivery", service.ExactlyOnce, "exactly-once (client message IDs de-duplicated) or at-least-once")
		fanOut    = fs.Int("fanout-limit", 64, "largest group fanned out on write; larger groups are fanned out at read time")
		redeliver = fs.Duration("redeliver-after", 2*time.Second, "resend a message unacknowledged this long")
		presence  = fs.Duration("presence-ttl", 15*time.Second, "lifetime of a user's presence without a heartbeat")
		mediaDir  = fs.String("media", "chat-media", "directory of the content-addressed media store; empty: uploads off")
		maxMedia  = fs.Int64("max-media", blob.DefaultMaxBytes, "largest upload in bytes")
		tokenKey  = fs.String("token-key", "", "hex key (≥ 32 bytes) signing bearer tokens; empty: a random key, so tokens last one run")
		demoUsers = fs.String("demo-users", "", "comma-separated users to print page URLs with tokens for")
		verbose   = fs.Bool("v", false, "log at debug level")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: chat [flags]\n\nA chat gateway: WebSocket /api/v1/ws, SSE /api/v1/events, POST /api/v1/messages and /api/v1/acks, the page on /.\nEvery flag may be set as CHAT_<FLAG> (e.g. CHAT_CLUSTER); REDIS_ADDR sets -redis.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := flagenv.Set(fs, "CHAT"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *cluster < 1 {
		return fmt.Errorf("-cluster %d: need at least one gateway", *cluster)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	key := make([]byte, 32)
	if *tokenKey == "" {
		_, _ = rand.Read(key)
	} else {
		var err error
		if key, err = hex.DecodeString(*tokenKey); err != nil {
			return fmt.Errorf("-token-key: not hex: %w", err)
		}
	}
	tokens, err := service.NewTokens(key)
	if err != nil {
		return fmt.Errorf("-token-key: %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: *rAddr, ContextTimeoutEnabled: true, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	var shardDBs []redis.UniversalClient
	for _, a := range strings.Split(*shards, ",") {
		if a = strings.TrimSpace(a); a != "" {
			db := redis.NewClient(&redis.Options{Addr: a, ContextTimeoutEnabled: true, DialTimeout: 200 * time.Millisecond})
			defer db.Close()
			shardDBs = append(shardDBs, db)
		}
	}
	cfg := service.ClusterConfig{Addr: *addr, Gateways: *cluster, Service: service.Config{
		Redis: rdb, Shards: shardDBs, Prefix: *prefix, Authenticate: tokens.User, Delivery: *delivery, FanOutLimit: *fanOut,
		RedeliverAfter: *redeliver, PresenceTTL: *presence, Logger: logger,
	}}
	if *mediaDir != "" {
		if cfg.Service.Media, err = service.NewMedia(*mediaDir, *maxMedia, nil); err != nil {
			return err
		}
	}
	c, err := service.Start(ctx, cfg)
	if err != nil {
		return err
	}
	pages := map[string]string{}
	for _, u := range strings.Split(*demoUsers, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		tok, err := tokens.Issue(u, 24*time.Hour)
		if err != nil {
			_ = c.Close(context.Background())
			return fmt.Errorf("-demo-users: %w", err)
		}
		pages[u] = c.URL() + "/#token=" + tok
		logger.Info("page", "user", u, "url", pages[u])
	}
	logger.Info("serving", "url", c.URL(), "gateways", c.GatewayURLs, "delivery", cfg.Service.Delivery, "redis", *rAddr)
	if ready != nil {
		ready(c, pages)
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-c.Err():
	}
	logger.Info("draining")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return errors.Join(serveErr, c.Close(sctx))
}

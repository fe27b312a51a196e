// Command shop is the e-commerce platform of the guide System Design
// Round — Principal Engineer Interview Preparation, "Real-World System
// Designs → 4. E-commerce Platform", as a real HTTP service built from this
// repository's packages (see package service for the design), with the
// CP inventory of "Distributed Systems → CAP Theorem" and the saga, event
// sourcing and CQRS of "Advanced System Design Topics → Event-Driven
// Architecture":
//
//	REDIS_ADDR=127.0.0.1:6379 go run ./examples/shop -seed -addr 127.0.0.1:8080   # one instance, data in ./shop-data
//	REDIS_ADDR=127.0.0.1:6379 go run ./examples/shop -seed -addr 127.0.0.1:8080 -cluster 3 -inventory raft
//
//	curl -s 'localhost:8080/api/v1/products?q=coffee&facet=attr.color'
//	curl -s localhost:8080/api/v1/products/mug-blue
//	curl -s -X POST localhost:8080/api/v1/sessions
//	curl -s localhost:8080/metrics
//
// Users and administrators authenticate with bearer tokens signed with
// -token-secret (set it through SHOP_TOKEN_SECRET); -issue-token prints
// one. Payment callbacks must carry the HMAC-SHA256 of their body under
// -callback-secret in X-Signature. Without the secrets, random ones are
// made for the run and checkouts need a token from -issue-token of the
// same run — so set them for anything but a look around.
//
// Every flag has an environment variable (SHOP_<FLAG>, upper case, '-' as
// '_'); flags win. SIGINT or SIGTERM stops gracefully: in-flight checkouts
// finish; an order a crash interrupts is resumed from its event log at the
// next start.
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
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/internal/flagenv"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/examples/shop/catalog"
	"github.com/sysdesign-go/sysdesign/examples/shop/service"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, logOut io.Writer) error {
	fs := flag.NewFlagSet("shop", flag.ContinueOnError)
	fs.SetOutput(logOut)
	var (
		addr       = fs.String("addr", "127.0.0.1:8080", "listen address (of the load balancer with -cluster)")
		cluster    = fs.Int("cluster", 1, "number of instances in this process; more than 1 puts them behind the lb proxy on -addr")
		dataDir    = fs.String("data", "shop-data", "data directory: catalog, one order log per shard, the Raft inventory")
		shards     = fs.Int("shards", 4, "number of order shards (fixed when the data directory is created)")
		redisAddr  = fs.String("redis", os.Getenv("REDIS_ADDR"), "Redis address (env REDIS_ADDR): sessions, carts, streams, read models; required")
		namespace  = fs.String("namespace", "shop:", "prefix of every Redis key of this deployment")
		stockKind  = fs.String("inventory", service.StockRedis, "inventory: raft (CP, a 3-node Raft group in process), redis (atomic Lua) or reservations (holds that expire)")
		holdTTL    = fs.Duration("hold-ttl", 10*time.Minute, "how long -inventory reservations holds stock for a checkout")
		rate       = fs.Int("checkout-rate", 5, "checkouts per second per user")
		secret     = fs.String("token-secret", "", "HS256 secret (32 bytes or more) of bearer tokens; set it through SHOP_TOKEN_SECRET; empty: a random one for this run")
		cbSecret   = fs.String("callback-secret", "", "HMAC secret (16 bytes or more) of payment callbacks; set it through SHOP_CALLBACK_SECRET; empty: a random one for this run")
		issueToken = fs.String("issue-token", "", "print a token for this user (with -admin, of the admin role), valid for an hour, and exit")
		admin      = fs.Bool("admin", false, "with -issue-token: a token of the admin role")
		seed       = fs.Bool("seed", false, "put a demo catalog, 100 of each product in stock, if the catalog is empty")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := flagenv.Set(fs, "SHOP"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *secret == "" {
		*secret = randomSecret()
	}
	if *cbSecret == "" {
		*cbSecret = randomSecret()
	}
	tokens, err := httpsec.NewTokens(httpsec.TokenOptions{Issuer: "shop", Audience: "shop", Secret: []byte(*secret), Leeway: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("-token-secret: %w", err)
	}
	if *issueToken != "" {
		var roles []string
		if *admin {
			roles = []string{service.AdminRole}
		}
		tok, err := tokens.Issue(*issueToken, roles, time.Hour)
		if err != nil {
			return fmt.Errorf("-issue-token: %w", err)
		}
		_, err = fmt.Fprintln(out, tok)
		return err
	}
	if *redisAddr == "" {
		return errors.New("-redis (or REDIS_ADDR) is required")
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(logOut, nil))
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr, ContextTimeoutEnabled: true, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	stock, closeStock, err := service.NewStock(ctx, *stockKind, *dataDir, rdb, *namespace, *holdTTL)
	if err != nil {
		return fmt.Errorf("-inventory %s: %w", *stockKind, err)
	}
	defer closeStock()
	shop, err := service.Open(ctx, service.Config{
		DataDir: *dataDir, Shards: *shards, Redis: rdb, Prefix: *namespace, Stock: stock, Tokens: tokens,
		CallbackSecret: []byte(*cbSecret), Logger: logger,
		CheckoutLimit: ratelimit.Limit{Events: *rate, Per: time.Second, Burst: 2 * *rate},
	})
	if err != nil {
		return err
	}
	defer shop.Close()
	if *seed {
		if err := seedCatalog(ctx, shop); err != nil {
			return fmt.Errorf("-seed: %w", err)
		}
	}
	c, err := service.Start(shop, *addr, *cluster)
	if err != nil {
		return err
	}
	logger.Info("serving", "url", c.URL(), "instances", c.InstanceURLs, "inventory", *stockKind, "data", *dataDir)
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

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// seedCatalog puts the demo products, with 100 of each in stock, into an
// empty catalog.
func seedCatalog(ctx context.Context, s *service.Shop) error {
	if res, err := s.Catalog().Search(ctx, catalog.Query{Limit: 1}); err != nil || res.Total > 0 {
		return err
	}
	for _, p := range demoProducts {
		if err := s.Catalog().Put(ctx, p); err != nil {
			return err
		}
		if err := s.Stock().Restock(ctx, p.ID, 100); err != nil {
			return err
		}
	}
	return nil
}

var demoProducts = []catalog.Product{
	{ID: "mug-blue", Name: "Blue coffee mug", Category: "kitchen", Brand: "acme", Price: 900, Attributes: map[string]string{"color": "blue"}},
	{ID: "mug-red", Name: "Red coffee mug", Category: "kitchen", Brand: "acme", Price: 950, Attributes: map[string]string{"color": "red"}},
	{ID: "beans", Name: "Coffee beans, 1 kg", Description: "single origin, medium roast", Category: "food", Brand: "roast", Price: 2400},
	{ID: "kettle", Name: "Electric kettle", Description: "boils water for coffee and tea", Category: "kitchen", Brand: "volt", Price: 3500},
	{ID: "grinder", Name: "Coffee grinder", Category: "kitchen", Brand: "volt", Price: 5900},
	{ID: "tee-red", Name: "Red t-shirt", Category: "clothing", Brand: "acme", Price: 1500, Attributes: map[string]string{"color": "red", "size": "m"}},
	{ID: "tee-blue", Name: "Blue t-shirt", Category: "clothing", Brand: "loom", Price: 1600, Attributes: map[string]string{"color": "blue", "size": "l"}},
	{ID: "tea", Name: "Green tea", Category: "food", Brand: "leaf", Price: 800},
}

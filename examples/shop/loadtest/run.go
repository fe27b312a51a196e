package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/examples/shop/catalog"
	"github.com/sysdesign-go/sysdesign/examples/shop/inventory"
	"github.com/sysdesign-go/sysdesign/examples/shop/order"
	"github.com/sysdesign-go/sysdesign/examples/shop/payment"
	"github.com/sysdesign-go/sysdesign/examples/shop/service"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

// Options configure one flash sale.
type Options struct {
	Inventory   string
	Buyers      int
	Stock       int
	Concurrency int
	Instances   int
	RedisCut    time.Duration
	Faults      payment.Faults
	RedisAddr   string
	// Patience is how long a buyer keeps retrying.
	Patience time.Duration
	// Drain bounds the wait for recovery to finish every order.
	Drain time.Duration
	// DataDir holds the shop's files; empty means a temporary directory.
	DataDir string
}

func defaultOptions() Options {
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	return Options{Buyers: 2000, Stock: 50, Concurrency: 64, Instances: 3, RedisCut: 2 * time.Second, RedisAddr: addr,
		Faults:   payment.Faults{Errors: 0.05, Lost: 0.02, Slow: 0.05, SlowDelay: 50 * time.Millisecond, Declines: 0.05, Duplicates: 0.1, Seed: 1},
		Patience: 20 * time.Second, Drain: 30 * time.Second}
}

// Report is what a flash sale measured and checked.
type Report struct {
	Inventory                    string
	Buyers, Stock                int
	Completed, Failed, Abandoned int
	Throughput                   float64 // buyer checkouts answered per second
	P50, P99                     time.Duration
	Payments                     payment.Stats
	Level                        inventory.Level
	Oversold, DoubleCharges      int
	Unfinished, Uncompensated    int
	Violations                   []string
}

const product = "flash-item"

// Run runs one flash sale against a fresh shop and checks its invariants.
func Run(ctx context.Context, o Options) (Report, error) {
	rep := Report{Inventory: o.Inventory, Buyers: o.Buyers, Stock: o.Stock}
	dir := o.DataDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "flashsale-"); err != nil {
			return rep, err
		}
		defer os.RemoveAll(dir)
	}
	// The shop reaches Redis through a proxy the sale cuts.
	proxy, err := tcpproxy.New(o.RedisAddr)
	if err != nil {
		return rep, err
	}
	defer proxy.Close()
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1,
		DialTimeout: 100 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, PoolSize: 128})
	defer rdb.Close()
	prefix := "flashsale:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	defer purge(o.RedisAddr, prefix)

	secret := []byte("flash-sale-token-secret-0123456789")
	tokens, err := httpsec.NewTokens(httpsec.TokenOptions{Issuer: "shop", Audience: "shop", Secret: secret})
	if err != nil {
		return rep, err
	}
	stock, closeStock, err := service.NewStock(ctx, o.Inventory, dir, rdb, prefix, 5*time.Second)
	if err != nil {
		return rep, err
	}
	defer closeStock()
	provider := payment.NewProvider(o.Faults)
	shop, err := service.Open(ctx, service.Config{DataDir: dir, Shards: 4, Redis: rdb, Prefix: prefix, Stock: stock, Tokens: tokens,
		CallbackSecret: secret, Provider: provider, GiveUp: 3 * time.Second, RecoverEvery: 100 * time.Millisecond,
		Payments:      payment.ClientOptions{Timeout: 100 * time.Millisecond, BreakAfter: 20, BreakFor: 200 * time.Millisecond},
		CheckoutLimit: ratelimit.Limit{Events: 10, Per: time.Second, Burst: 10}})
	if err != nil {
		return rep, err
	}
	defer shop.Close()
	if err := shop.Catalog().Put(ctx, catalog.Product{ID: product, Name: "Flash sale item", Category: "deals", Price: 4999}); err != nil {
		return rep, err
	}
	if err := restock(ctx, stock, o.Stock); err != nil {
		return rep, err
	}
	cluster, err := service.Start(shop, "127.0.0.1:0", o.Instances)
	if err != nil {
		return rep, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cluster.Close(sctx)
	}()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	type result struct {
		status  string
		latency time.Duration
	}
	results := make([]result, o.Buyers)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range o.Concurrency {
		wg.Go(func() {
			for i := range next {
				user := "buyer" + strconv.Itoa(i)
				tok, _ := tokens.Issue(user, nil, time.Hour)
				t0 := time.Now()
				results[i].status = buy(ctx, client, cluster.URL(), tok, user, o.Patience)
				results[i].latency = time.Since(t0)
			}
		})
	}
	// Faults at a third of the sale: kill an instance, then cut Redis.
	var faults sync.WaitGroup
	for i := range o.Buyers {
		if i == o.Buyers/3 {
			if o.Instances > 1 {
				_ = cluster.Kill(1)
			}
			if o.RedisCut > 0 {
				proxy.Cut()
				faults.Go(func() {
					select {
					case <-ctx.Done():
					case <-time.After(o.RedisCut):
					}
					proxy.Restore()
				})
			}
		}
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	faults.Wait()
	elapsed := time.Since(start)

	// Let recovery finish every order, then check.
	deadline := time.Now().Add(o.Drain)
	for {
		ids, err := shop.Unfinished()
		if err == nil && len(ids) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var lat []time.Duration
	for _, r := range results {
		lat = append(lat, r.latency)
	}
	slices.Sort(lat)
	rep.P50, rep.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	rep.Throughput = float64(o.Buyers) / elapsed.Seconds()
	return rep, check(ctx, &rep, shop, provider, stock)
}

// buy puts one unit in the user's cart and checks out, retrying what
// failed for want of an answer (a killed instance, a cut Redis) until
// patience runs out; it returns the order's status as the buyer last saw
// it ("" if the buyer never got an order).
func buy(ctx context.Context, c *http.Client, base, tok, user string, patience time.Duration) string {
	deadline := time.Now().Add(patience)
	cart := "u-" + user
	do := func(method, path string, body any, key string) (int, map[string]any) {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	retry := func(method, path string, body any, key string) (int, map[string]any) {
		for {
			code, out := do(method, path, body, key)
			if (code != 0 && code < 500 && code != http.StatusTooManyRequests) || time.Now().After(deadline) || ctx.Err() != nil {
				return code, out
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if code, _ := retry("PUT", "/api/v1/carts/"+cart+"/items/"+product, map[string]int{"qty": 1}, ""); code != http.StatusOK {
		return ""
	}
	code, o := retry("POST", "/api/v1/checkout", map[string]any{"cart": cart, "total": 4999}, "sale")
	if code != http.StatusCreated && code != http.StatusOK && code != http.StatusAccepted {
		return ""
	}
	status, _ := o["status"].(string)
	return status
}

// check compares what the buyers, the order logs, the provider and the
// stock say, and fills rep's counts and violations.
func check(ctx context.Context, rep *Report, shop *service.Shop, provider *payment.Provider, stock inventory.Store) error {
	var err error
	for range 50 { // the stock store may still be recovering from the cut
		if rep.Level, err = stock.Level(ctx, product); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	rep.Payments = provider.Stats()
	soldUnits := 0
	for i := range rep.Buyers {
		user := "buyer" + strconv.Itoa(i)
		id := service.OrderID(user, "sale")
		o, err := shop.Order(id)
		if errors.Is(err, order.ErrNotFound) {
			rep.Abandoned++
			continue
		}
		if err != nil {
			return err
		}
		switch o.Status {
		case order.StatusDone:
			rep.Completed++
			soldUnits += o.Lines[0].Qty
			if !provider.Settled(id) {
				rep.Violations = append(rep.Violations, fmt.Sprintf("completed order %s not paid", id))
			}
		case order.StatusCancelled:
			rep.Failed++
			if provider.Settled(id) || !o.Released {
				rep.Uncompensated++
			}
		default:
			rep.Unfinished++
		}
	}
	l := rep.Level
	if l.Sold > rep.Stock {
		rep.Oversold = l.Sold - rep.Stock
	}
	if kept := rep.Payments.Charges - rep.Payments.Refunds; kept > rep.Completed {
		rep.DoubleCharges = kept - rep.Completed
	}
	add := func(cond bool, format string, args ...any) {
		if cond {
			rep.Violations = append(rep.Violations, fmt.Sprintf(format, args...))
		}
	}
	add(rep.Oversold > 0, "oversold %d", rep.Oversold)
	add(rep.DoubleCharges > 0, "%d charges kept beyond the %d completed orders", rep.DoubleCharges, rep.Completed)
	add(rep.Payments.Charges-rep.Payments.Refunds < rep.Completed, "%d completed orders but %d charges kept", rep.Completed, rep.Payments.Charges-rep.Payments.Refunds)
	add(rep.Unfinished > 0, "%d orders unfinished", rep.Unfinished)
	add(rep.Uncompensated > 0, "%d failed orders not compensated", rep.Uncompensated)
	add(!l.Consistent() || l.Total != rep.Stock, "stock arithmetic %+v", l)
	add(l.Sold != soldUnits, "sold %d units but completed orders hold %d", l.Sold, soldUnits)
	add(l.Reserved != 0, "%d units still reserved", l.Reserved)
	return nil
}

// restock puts n units of the sale's product in stock. A Raft store may
// lose its leader meanwhile, leaving the outcome unknown, and a restock is
// not idempotent: read the level before trying again.
func restock(ctx context.Context, s inventory.Store, n int) error {
	for range 20 {
		err := s.Restock(ctx, product, n)
		if !errors.Is(err, inventory.ErrUnavailable) {
			return err
		}
		for {
			l, err := s.Level(ctx, product)
			if err == nil && l.Total >= n {
				return nil
			}
			if err == nil || errors.Is(err, inventory.ErrUnknownProduct) {
				break // not applied: try again
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return fmt.Errorf("restock of %s: the store stays unavailable", product)
}

// purge deletes the sale's keys.
func purge(addr, prefix string) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			c.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
}

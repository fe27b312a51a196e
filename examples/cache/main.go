// Command cache shows cache-aside over a slow database three ways — no
// cache, an in-process L1, and L1 over a Redis L2 — and prints the hit
// ratio, latency and database load of each.
//
// Guide: "Database Design → Caching Strategies" (cache-aside, L1 and L2
// caches); "Performance Considerations → Latency Optimization → Caching".
//
//	go run ./examples/cache                 # Redis at REDIS_ADDR or 127.0.0.1:6379
//	go run ./examples/cache -reads 20000
//
// Without a reachable Redis the L1 + L2 run is skipped with a message.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/cache/rediscache"
	"github.com/sysdesign-go/sysdesign/internal/sim"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cache:", err)
		os.Exit(1)
	}
}

// database is the slow source of truth: every query takes latency.
type database struct {
	latency time.Duration
	queries atomic.Int64
}

func (d *database) Load(ctx context.Context, key string) (string, error) {
	d.queries.Add(1)
	t := time.NewTimer(d.latency)
	defer t.Stop()
	select {
	case <-t.C:
		return "row for " + key, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

type result struct {
	name     string
	hitRatio float64
	lat      sim.Summary
	queries  int64
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cache", flag.ContinueOnError)
	reads := fs.Int("reads", 5000, "reads per configuration")
	keys := fs.Uint64("keys", 10_000, "distinct keys (Zipf 1.0 popularity)")
	dbLatency := fs.Duration("db-latency", time.Millisecond, "latency of one database query")
	addr := fs.String("redis", redisAddr(), "Redis address for the L2")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *reads <= 0 || *keys == 0 || *dbLatency < 0 {
		return fmt.Errorf("need positive -reads and -keys and a non-negative -db-latency, got %d, %d, %v", *reads, *keys, *dbLatency)
	}
	measure := func(name string, store cache.Store[string, string]) (result, error) {
		db := &database{latency: *dbLatency}
		z, err := sim.NewZipf(sim.NewRand(1, 1), 1.0, *keys)
		if err != nil {
			return result{}, err
		}
		rec := sim.NewRecorder()
		var get func(ctx context.Context, key string) (string, error) = db.Load
		var aside *cache.Aside[string, string]
		if store != nil {
			if aside, err = cache.NewAside(store, cache.AsideOptions{TTL: time.Minute, Jitter: 0.1}); err != nil {
				return result{}, err
			}
			get = func(ctx context.Context, key string) (string, error) { return aside.Get(ctx, key, db.Load) }
		}
		for range *reads {
			k := fmt.Sprint("user:", z.Next())
			t0 := time.Now()
			if _, err := get(ctx, k); err != nil {
				return result{}, err
			}
			rec.Record(time.Since(t0))
		}
		r := result{name: name, lat: rec.Summary(), queries: db.queries.Load()}
		if aside != nil {
			r.hitRatio = aside.Stats().HitRatio()
		}
		return r, nil
	}

	var results []result
	r, err := measure("no cache", nil)
	if err != nil {
		return err
	}
	results = append(results, r)
	l1, err := cache.NewMemory(1000, cache.MemoryOptions[string, string]{})
	if err != nil {
		return err
	}
	if r, err = measure("L1 (1,000 entries, W-TinyLFU)", l1.AsStore()); err != nil {
		return err
	}
	results = append(results, r)

	client := redis.NewClient(&redis.Options{Addr: *addr, DialTimeout: time.Second, MaxRetries: -1})
	defer client.Close()
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	perr := client.Ping(pctx).Err()
	cancel()
	var skipped string
	if perr != nil {
		skipped = fmt.Sprintf("L1 + L2 skipped: no Redis at %s (%v)", *addr, perr)
	} else {
		var b [6]byte
		_, _ = rand.Read(b[:])
		prefix := "sysdesign-example:cache:" + hex.EncodeToString(b[:]) + ":"
		l2, err := rediscache.New[string](client, rediscache.Options{Prefix: prefix})
		if err != nil {
			return err
		}
		defer func() { _, _ = l2.DeletePrefix(context.Background(), "") }()
		l1b, err := cache.NewMemory(1000, cache.MemoryOptions[string, string]{})
		if err != nil {
			return err
		}
		ml, err := rediscache.NewMultiLevel(ctx, l1b, l2, rediscache.MultiLevelOptions{})
		if err != nil {
			return err
		}
		if r, err = measure("L2 only (Redis)", l2); err != nil {
			return err
		}
		results = append(results, r)
		if _, err := l2.DeletePrefix(ctx, ""); err != nil {
			return err
		}
		if r, err = measure("L1 + L2 (Redis)", ml); err != nil {
			return err
		}
		results = append(results, r)
	}

	fmt.Fprintf(out, "%d reads, Zipf(1.0) over %d keys, database latency %v\n\n", *reads, *keys, *dbLatency)
	fmt.Fprintf(out, "%-32s %9s %10s %10s %10s %9s\n", "configuration", "hit ratio", "p50", "p99", "mean", "DB calls")
	for _, r := range results {
		fmt.Fprintf(out, "%-32s %9.3f %10v %10v %10v %9d\n", r.name, r.hitRatio,
			r.lat.P50.Round(100*time.Nanosecond), r.lat.P99.Round(time.Microsecond), r.lat.Mean.Round(100*time.Nanosecond), r.queries)
	}
	if skipped != "" {
		fmt.Fprintln(out, "\n"+skipped)
	} else {
		fmt.Fprintln(out, "\n"+l2Note)
	}
	return nil
}

// l2Note says what the L1 + L2 row means: read alone, it says "L2 hurts".
const l2Note = "L1 + L2 is no faster than L1 alone in one process: both hit the same hot keys, and every L1 miss adds a Redis round trip (and a write to fill L2); " +
	"an L2 pays off when many instances share its fills and a restarted instance starts warm (lab: cache-l1-l2)."

func redisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/cache/rediscache"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/internal/sim"
)

var cacheL1L2Experiment = lab.Experiment{
	Name: "cache-l1-l2", Group: "cache", Section: cacheSection, WallClock: true,
	Title: "L2 (Redis) only versus L1 (in-process) + L2: read latency and Redis round trips",
	Guide: "L1 Cache: Application-level (in-memory) ... Fastest access, lowest latency; L2 Cache: Distributed cache (Redis, Memcached) ... Network latency, but shared across instances",
	Run:   runCacheL1L2,
}

type l1l2Row struct {
	name       string
	lat        sim.Summary
	roundTrips uint64
	hitRatio   float64
}

// redisCounter counts the commands a client sends: the round trips.
type redisCounter struct{ n atomic.Uint64 }

func (c *redisCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *redisCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}

func (c *redisCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

func cacheL1L2Run(ctx context.Context, env *lab.Env, client *redis.Client, counter *redisCounter, prefix string, reads int) ([]l1l2Row, error) {
	var rows []l1l2Row
	for i, withL1 := range []bool{false, true} {
		l2, err := rediscache.New[int](client, rediscache.Options{Prefix: fmt.Sprintf("%s%d:", prefix, i), Timeout: time.Second})
		if err != nil {
			return nil, err
		}
		var store cache.Store[string, int] = l2
		name := "L2 only (Redis)"
		if withL1 {
			l1, err := cache.NewMemory(1000, cache.MemoryOptions[string, int]{})
			if err != nil {
				return nil, err
			}
			ml, err := rediscache.NewMultiLevel(ctx, l1, l2, rediscache.MultiLevelOptions{})
			if err != nil {
				return nil, err
			}
			store, name = ml, "L1 (1,000 entries) + L2"
		}
		a, err := cache.NewAside(store, cache.AsideOptions{TTL: time.Minute})
		if err != nil {
			return nil, err
		}
		z, err := sim.NewZipf(env.Rand(40), 1.0, 10_000)
		if err != nil {
			return nil, err
		}
		src := newSlowSource(8, 500*time.Microsecond)
		rec := sim.NewRecorder()
		before := counter.n.Load()
		for range reads {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			k := fmt.Sprint("item:", z.Next())
			t0 := time.Now()
			if _, err := a.Get(ctx, k, src.load); err != nil {
				return nil, err
			}
			rec.Record(time.Since(t0))
		}
		rows = append(rows, l1l2Row{name: name, lat: rec.Summary(), roundTrips: counter.n.Load() - before, hitRatio: a.Stats().HitRatio()})
	}
	return rows, nil
}

func runCacheL1L2(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	addr := redistest.Addr()
	client := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	defer client.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := client.Ping(pctx).Err()
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		t := lab.NewTable("L1 + L2 against Redis", "status", "reason")
		t.AddRow("skipped", fmt.Sprintf("no Redis at %s (%v); start one with redis-server or set REDIS_ADDR", addr, err))
		return &lab.Result{Reason: "Not measured: this experiment needs a real Redis.", Tables: []*lab.Table{t}, Notes: []string{"Skipped: this experiment needs a real Redis."}}, nil
	}
	counter := &redisCounter{}
	client.AddHook(counter)
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "sysdesign-lab:cache-l1-l2:" + hex.EncodeToString(b[:]) + ":"
	reads := env.Scale(20_000, 2_000)
	rows, runErr := cacheL1L2Run(ctx, env, client, counter, prefix, reads)
	// Delete our keys whatever happened.
	cleanup, err := rediscache.New[int](client, rediscache.Options{Prefix: prefix, Timeout: time.Second})
	if err == nil {
		_, err = cleanup.DeletePrefix(context.WithoutCancel(ctx), "")
	}
	if runErr != nil || err != nil {
		return nil, errors.Join(runErr, err)
	}
	t := lab.NewTable(fmt.Sprintf("%d cache-aside reads, Zipf(1.0) over 10,000 keys, Redis at %s", reads, addr),
		"levels", "hit ratio", "p50", "p90", "p99", "Redis round trips", "round trips per read")
	for _, r := range rows {
		t.AddRow(r.name, fmt.Sprintf("%.3f", r.hitRatio), r.lat.P50, r.lat.P90, r.lat.P99, r.roundTrips, fmt.Sprintf("%.2f", float64(r.roundTrips)/float64(reads)))
	}
	l2, both := rows[0], rows[1]
	verdict, reason := cacheL1L2Verdict(l2, both)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Notes: []string{
		fmt.Sprintf("An L1 hit costs no network: p50 falls from %v (a Redis round trip) to %v, and Redis sees %d round trips instead of %d (%.0f%% fewer). The guide's \"fastest access, lowest latency\" for L1 and \"network latency\" for L2, measured on loopback — across a real network the gap is wider.", lab.Format(l2.lat.P50), lab.Format(both.lat.P50), both.roundTrips, l2.roundTrips, 100*(1-float64(both.roundTrips)/float64(l2.roundTrips))),
		"L1 is per process, so a multi-process deployment needs the pub/sub invalidation of rediscache.MultiLevel (tested in the package) or a short L1 TTL to bound staleness.",
	}}, nil
}

// cacheL1L2Verdict judges "L1: fastest access, lowest latency; L2: network
// latency" by the median read and the round trips to Redis.
func cacheL1L2Verdict(l2, both l1l2Row) (lab.Verdict, string) {
	return lab.Judge(2*both.lat.P50 < l2.lat.P50 && both.roundTrips < l2.roundTrips,
		fmt.Sprintf("An in-process L1 in front of Redis brings the median read from %v to %v and Redis round trips from %d to %d.", lab.Format(l2.lat.P50), lab.Format(both.lat.P50), l2.roundTrips, both.roundTrips),
		lab.Refutes,
		fmt.Sprintf("An in-process L1 did not halve the median read (%v with, %v without) or the round trips (%d with, %d without).", lab.Format(both.lat.P50), lab.Format(l2.lat.P50), both.roundTrips, l2.roundTrips))
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/ratelimit"
	"github.com/sysdesign-go/sysdesign/ratelimit/redislimit"
)

var ratelimitRedisGlobalExperiment = lab.Experiment{
	Name:      "ratelimit-redis-global",
	Group:     "ratelimit",
	Title:     "4 instances sharing one limit through the real Redis versus local limits (wall clock)",
	Section:   "Performance Considerations → Throughput Optimization; " + rlSection,
	Guide:     "Distributed Cache: Redis cluster, Memcached; API Gateway: Centralized routing and throttling",
	WallClock: true,
	Run:       runRateLimitRedis,
}

// rlRedisOutcome is the wall-clock run through the real Redis.
type rlRedisOutcome struct {
	skipped        string // why no Redis run happened, if it did not
	duration       time.Duration
	offered        int
	redisAdmitted  int
	localAdmitted  int
	redisErrors    uint64
	limitPerSecond int
	burst          int
}

// runRedisGlobal sends skewed traffic at 2× a 100/s limit from 4
// goroutines (the instances), each with its own Redis connection, for d of
// wall-clock time, deciding every request both through Redis (GCRA, one
// shared key) and through the instance's own in-memory GCRA.
func runRedisGlobal(ctx context.Context, d time.Duration) (*rlRedisOutcome, error) {
	out := &rlRedisOutcome{duration: d, limitPerSecond: 100, burst: 10}
	addr := redistest.Addr()
	probe := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := probe.Ping(pctx).Err()
	cancel()
	_ = probe.Close()
	if err != nil {
		out.skipped = fmt.Sprintf("no Redis answered at %s (%v); %s", addr, err, redistest.Howto)
		return out, nil
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "sysdesign-lab:ratelimit:" + hex.EncodeToString(b[:]) + ":"
	limit := ratelimit.Limit{Events: out.limitPerSecond, Per: time.Second, Burst: out.burst}
	shares := rlSplits[1].shares
	var redisOK, localOK, offered atomic.Int64
	var errs atomic.Uint64
	var wg sync.WaitGroup
	var clients []*redis.Client
	defer func() {
		if len(clients) > 0 {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = redistest.Purge(cctx, clients[0], prefix)
			cancel()
		}
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	start := time.Now()
	for _, share := range shares {
		c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		clients = append(clients, c)
		rl, err := redislimit.New(c, ratelimit.AlgGCRA, redislimit.Options{Prefix: prefix, Timeout: time.Second,
			OnError: func(string, error, redislimit.FailurePolicy) { errs.Add(1) }}, limit)
		if err != nil {
			return nil, err
		}
		local, err := ratelimit.NewGCRA(limit)
		if err != nil {
			return nil, err
		}
		gap := time.Duration(float64(time.Second) / (2 * float64(out.limitPerSecond) * share))
		wg.Go(func() {
			for next := start; ; next = next.Add(gap) {
				if time.Since(start) >= d || ctx.Err() != nil {
					return
				}
				if w := time.Until(next); w > 0 {
					time.Sleep(w)
				}
				offered.Add(1)
				if dec, err := rl.Decide(ctx, "api", 1); err == nil && dec.Allowed {
					redisOK.Add(1)
				}
				if local.Allow() {
					localOK.Add(1)
				}
			}
		})
	}
	wg.Wait()
	out.duration = time.Since(start)
	out.offered, out.redisAdmitted, out.localAdmitted = int(offered.Load()), int(redisOK.Load()), int(localOK.Load())
	out.redisErrors = errs.Load()
	return out, ctx.Err()
}

func runRateLimitRedis(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	o, err := runRedisGlobal(ctx, time.Duration(env.Scale(5000, 1000))*time.Millisecond)
	if err != nil {
		return nil, err
	}
	if o.skipped != "" {
		return &lab.Result{Reason: "Not measured: " + o.skipped + ".", Notes: []string{"Skipped: " + o.skipped + ". The virtual-time model in ratelimit-local-vs-global shows the expected outcome."}}, nil
	}
	ideal := float64(o.limitPerSecond)*o.duration.Seconds() + float64(o.burst)
	t := lab.NewTable(fmt.Sprintf("4 instances, skewed 70/10/10/10, %d requests at 2× a %d/s limit (burst %d) over %v of wall-clock time", o.offered, o.limitPerSecond, o.burst, o.duration),
		"deployment", "admitted", "admitted / (limit × time + burst)")
	t.AddRow("global: GCRA in Redis (one Lua script, server TIME)", o.redisAdmitted, float64(o.redisAdmitted)/ideal)
	t.AddRow("local: full limit per instance (in memory)", o.localAdmitted, float64(o.localAdmitted)/ideal)
	verdict, reason := rlRedisVerdict(float64(o.redisAdmitted)/ideal, float64(o.localAdmitted)/ideal)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Notes: []string{
		fmt.Sprintf("Through the real Redis at %s the four instances together admit %.3f× the global limit (%d Redis errors); the same requests judged by per-instance local limits admit %.2f×, as the virtual-time model predicts (1.6× for this split).",
			redistest.Addr(), float64(o.redisAdmitted)/ideal, o.redisErrors, float64(o.localAdmitted)/ideal),
		"Each decision costs one round trip (see redislimit's BenchmarkLimiter_Decide for decisions/s at 1, 8 and 64 clients); keys lived under a unique prefix and were deleted afterwards.",
	}}, ctx.Err()
}

// rlRedisVerdict judges "distributed cache: Redis ... centralized
// throttling" by the admitted rate, relative to the limit, of instances
// sharing one limit in Redis and of per-instance limits.
func rlRedisVerdict(redis, local float64) (lab.Verdict, string) {
	numbers := fmt.Sprintf("four instances sharing one limit through Redis admit %.3f× the limit, the same requests under per-instance limits %.2f×", redis, local)
	return lab.Judge(math.Abs(redis-1) <= 0.1 && local > 1.2, "A limit kept in Redis holds across instances: "+numbers+".", lab.Refutes, "A limit kept in Redis did not hold better than local ones: "+numbers+".")
}

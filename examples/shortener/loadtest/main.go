// Command loadtest drives the URL shortener with a realistic mix — Zipf-
// popular codes, 95% redirects and 5% creations — for a bounded time on
// loopback, and reports throughput and p50/p99/p99.9 latency:
//
//   - with the cache (L1, plus the Redis L2 when Redis is reachable),
//   - without the cache (every redirect reads the bbolt shards),
//   - with Redis cut half-way through the run (needs Redis): redirects of
//     codes created before the run must all succeed, from L1 and the store,
//     while the breaker keeps Redis's failure off the request path.
//
// Each configuration starts its own in-process cluster (-instances
// services behind the lb proxy) on a fresh data directory.
//
//	go run ./examples/shortener/loadtest                       # 5 s per run
//	go run ./examples/shortener/loadtest -duration 20s -concurrency 64
//	go run ./examples/shortener/loadtest -target http://127.0.0.1:8080   # an already running service
//
// The exit status is 1 if any redirect of a pre-created code failed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/shortener/service"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

type config struct {
	duration    time.Duration
	concurrency int
	codes       int
	zipf        float64
	createPct   float64
	instances   int
	redisAddr   string
	target      string
	seed        uint64
}

// result is one run's measurements.
type result struct {
	name                    string
	elapsed                 time.Duration
	redirects, creates      *sim.Recorder
	redirectErrors, limited atomic.Int64
	createErrors            atomic.Int64
	note                    string
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(out)
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "length of each run")
	fs.IntVar(&cfg.concurrency, "concurrency", 32, "concurrent clients")
	fs.IntVar(&cfg.codes, "codes", 2000, "codes created before each run (the popular set)")
	fs.Float64Var(&cfg.zipf, "zipf", 1.1, "Zipf exponent of code popularity")
	fs.Float64Var(&cfg.createPct, "create", 0.05, "fraction of requests that create a link")
	fs.IntVar(&cfg.instances, "instances", 3, "service instances behind the load balancer")
	fs.StringVar(&cfg.redisAddr, "redis", envOr("REDIS_ADDR", "127.0.0.1:6379"), "Redis for the L2 and the outage run; empty: none")
	fs.StringVar(&cfg.target, "target", "", "base URL of a running service to drive instead of in-process clusters")
	fs.Uint64Var(&cfg.seed, "seed", 1, "workload seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case cfg.duration <= 0, cfg.concurrency < 1, cfg.codes < 1, cfg.instances < 1:
		return fmt.Errorf("need positive -duration, -concurrency, -codes and -instances (got %v, %d, %d, %d)", cfg.duration, cfg.concurrency, cfg.codes, cfg.instances)
	case !(cfg.zipf > 0), !(cfg.createPct >= 0 && cfg.createPct <= 1):
		return fmt.Errorf("need -zipf > 0 and -create in [0, 1] (got %v, %v)", cfg.zipf, cfg.createPct)
	}
	var results []*result
	if cfg.target != "" {
		r, err := drive(ctx, cfg, "target "+cfg.target, cfg.target, nil)
		if err != nil {
			return err
		}
		results = append(results, r)
	} else {
		rdb := redisClient(ctx, cfg.redisAddr)
		if rdb != nil {
			defer rdb.Close()
		}
		for _, run := range []struct {
			name    string
			noCache bool
			cut     bool
		}{{"cache", false, false}, {"no cache", true, false}, {"cache, Redis cut at 50%", false, true}} {
			if run.cut && rdb == nil {
				fmt.Fprintf(out, "skipping %q: no Redis at %q\n", run.name, cfg.redisAddr)
				continue
			}
			r, err := runCluster(ctx, cfg, run.name, run.noCache, run.cut, rdb)
			if err != nil {
				return fmt.Errorf("%s: %w", run.name, err)
			}
			results = append(results, r)
		}
	}
	report(out, cfg, results)
	for _, r := range results {
		if n := r.redirectErrors.Load(); n > 0 {
			return fmt.Errorf("%s: %d redirects of existing codes failed", r.name, n)
		}
	}
	return nil
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}

func redisClient(ctx context.Context, addr string) *redis.Client {
	if addr == "" {
		return nil
	}
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond})
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if c.Ping(pctx).Err() != nil {
		_ = c.Close()
		return nil
	}
	return c
}

// runCluster starts a fresh cluster, optionally behind a cuttable Redis
// proxy, and drives it.
func runCluster(ctx context.Context, cfg config, name string, noCache, cut bool, rdb *redis.Client) (*result, error) {
	dir, err := os.MkdirTemp("", "shortener-loadtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	scfg := service.Config{
		NoCache: noCache, ClickInterval: 100 * time.Millisecond,
		// One client IP makes every creation: lift the per-IP limit so
		// the run measures the service, not the limiter.
		CreateLimit: ratelimit.Limit{Events: 1_000_000, Per: time.Second, Burst: 1_000_000},
		BreakerOpen: time.Second,
	}
	var proxy *tcpproxy.Proxy
	if rdb != nil && !noCache {
		proxy, err = tcpproxy.New(rdb.Options().Addr)
		if err != nil {
			return nil, err
		}
		defer proxy.Close()
		pc := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialTimeout: 100 * time.Millisecond, PoolSize: 4 * cfg.concurrency})
		defer pc.Close()
		scfg.Redis = pc
		scfg.RedisPrefix = fmt.Sprintf("shortener-loadtest:%d:", time.Now().UnixNano())
		defer purge(rdb, scfg.RedisPrefix)
	}
	c, err := service.Start(ctx, service.ClusterConfig{DataDir: dir, Instances: cfg.instances, Service: scfg})
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(sctx)
	}()
	var onHalf func()
	if cut {
		onHalf = proxy.Cut
	}
	r, err := drive(ctx, cfg, name, c.URL(), onHalf)
	if err != nil {
		return nil, err
	}
	if cut {
		var failed, rejected uint64
		for _, s := range c.Instances {
			st := s.Stats()
			failed += st.L2Errors - st.BreakerRejected
			rejected += st.BreakerRejected
		}
		r.note = fmt.Sprintf("after the cut %d Redis calls failed and the breakers short-circuited %d more", failed, rejected)
	} else if !noCache {
		var hits, lookups uint64
		for _, s := range c.Instances {
			st := s.Stats().Cache
			hits += st.Hits
			lookups += st.Hits + st.Misses
		}
		r.note = fmt.Sprintf("cache hit ratio %.1f%%, Redis L2 %v", 100*float64(hits)/float64(max(lookups, 1)), scfg.Redis != nil)
	}
	return r, nil
}

// purge deletes the run's Redis keys by SCAN (never KEYS).
func purge(rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

// drive creates the popular codes, then runs the mix for cfg.duration;
// onHalf, if set, runs half-way through.
func drive(ctx context.Context, cfg config, name, base string, onHalf func()) (*result, error) {
	tr := &http.Transport{MaxIdleConns: 2 * cfg.concurrency, MaxIdleConnsPerHost: 2 * cfg.concurrency}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	codes := make([]string, cfg.codes)
	var seedErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(cfg.concurrency, 16) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(codes); i = int(next.Add(1) - 1) {
				code, status, err := create(ctx, hc, base, fmt.Sprintf("https://example.com/popular/%d", i))
				if err != nil || status != http.StatusCreated {
					mu.Lock()
					seedErr = errors.Join(seedErr, fmt.Errorf("creating code %d: status %d: %v", i, status, err))
					mu.Unlock()
					return
				}
				codes[i] = code
			}
		})
	}
	wg.Wait()
	if seedErr != nil {
		return nil, seedErr
	}
	r := &result{name: name, redirects: sim.NewRecorder(), creates: sim.NewRecorder()}
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	if onHalf != nil {
		t := time.AfterFunc(cfg.duration/2, onHalf)
		defer t.Stop()
	}
	start := time.Now()
	var created atomic.Int64
	for w := range cfg.concurrency {
		wg.Go(func() {
			rng := sim.NewRand(cfg.seed, uint64(w)+1)
			z, err := sim.NewZipf(sim.NewRand(cfg.seed, uint64(w)+1001), cfg.zipf, uint64(len(codes)))
			if err != nil {
				panic(err) // validated above
			}
			red, cre := sim.NewRecorder(), sim.NewRecorder()
			defer func() { mu.Lock(); r.redirects.Merge(red); r.creates.Merge(cre); mu.Unlock() }()
			for ctx.Err() == nil {
				t0 := time.Now()
				if rng.Float64() < cfg.createPct {
					_, status, err := create(ctx, hc, base, fmt.Sprintf("https://example.com/new/%d/%d", w, created.Add(1)))
					switch {
					case ctx.Err() != nil:
						return
					case status == http.StatusTooManyRequests:
						r.limited.Add(1)
					case err != nil || status != http.StatusCreated:
						r.createErrors.Add(1)
					default:
						cre.Record(time.Since(t0))
					}
					continue
				}
				status, err := get(ctx, hc, base+"/"+codes[z.Next()])
				if ctx.Err() != nil {
					return
				}
				if err != nil || status != http.StatusFound {
					r.redirectErrors.Add(1)
					continue
				}
				red.Record(time.Since(t0))
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	return r, nil
}

func create(ctx context.Context, hc *http.Client, base, url string) (string, int, error) {
	body, _ := json.Marshal(map[string]string{"url": url})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/urls", bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var out struct{ Code string }
	err = json.NewDecoder(resp.Body).Decode(&out)
	return out.Code, resp.StatusCode, err
}

func get(ctx context.Context, hc *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func report(out io.Writer, cfg config, results []*result) {
	fmt.Fprintf(out, "%d clients, %v per run, %d popular codes (Zipf %.2f), %.0f%% creates, %d instances\n\n",
		cfg.concurrency, cfg.duration, cfg.codes, cfg.zipf, 100*cfg.createPct, cfg.instances)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\treq/s\tredirect p50\tp99\tp99.9\tcreate p50\tp99\tredirect errors\tcreate errors\t429s\t")
	for _, r := range results {
		red, cre := r.redirects.Summary(), r.creates.Summary()
		total := float64(red.Count+cre.Count+r.limited.Load()) / r.elapsed.Seconds()
		fmt.Fprintf(tw, "%s\t%.0f\t%v\t%v\t%v\t%v\t%v\t%d\t%d\t%d\t\n", r.name, total,
			round(red.P50), round(red.P99), round(red.P999), round(cre.P50), round(cre.P99),
			r.redirectErrors.Load(), r.createErrors.Load(), r.limited.Load())
	}
	_ = tw.Flush()
	for _, r := range results {
		if r.note != "" {
			fmt.Fprintf(out, "%s: %s\n", r.name, r.note)
		}
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

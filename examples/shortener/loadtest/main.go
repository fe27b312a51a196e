// Command loadtest drives the URL shortener with a realistic mix — Zipf-
// popular codes, 95% redirects and 5% creations — for a bounded time on
// loopback, and reports throughput, process CPU time per request, p50/
// p99/p99.9 latency and the Redis commands sent per request:
//
//   - with the cache (L1, plus the Redis L2 when Redis is reachable),
//   - without the cache (every redirect reads the store),
//   - with Redis cut half-way through the run (needs Redis): redirects of
//     codes created before the run must all succeed, from L1 and the store,
//     while the breaker keeps Redis's failure off the request path.
//
// Each run starts its own in-process cluster (-instances services behind
// the lb proxy) on a fresh data directory, with the same Redis
// configuration (global creation limit included) in every run, so that
// the cache is the only difference between the first two.
//
// Guide: "Real-World System Designs → 1. URL Shortener Service";
// "Performance Considerations → Throughput Optimization → Load Testing";
// "Fault Tolerance → Circuit Breakers" (the run with Redis cut).
//
//	go run ./examples/shortener/loadtest                       # 5 s per run
//	go run ./examples/shortener/loadtest -repeat 3             # cache / no cache alternated, three times
//	go run ./examples/shortener/loadtest -store-latency 1ms    # store reads cost a network round trip
//	go run ./examples/shortener/loadtest -cpuprofile /tmp/sl   # /tmp/sl-cache.pprof, /tmp/sl-no-cache.pprof, ...
//	go run ./examples/shortener -create-rate 100000 -create-burst 100000 &   # a running service, then:
//	go run ./examples/shortener/loadtest -target http://127.0.0.1:8080
//
// Why the cache barely changes throughput here, and where it does help, is
// measured in README.md beside this file. The exit status is 1 if any
// redirect of a pre-created code failed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
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
	duration     time.Duration
	concurrency  int
	codes        int
	zipf         float64
	createPct    float64
	instances    int
	redisAddr    string
	target       string
	seed         uint64
	runs         []string
	repeat       int
	storeLatency time.Duration
	cpuprofile   string
}

// The runs -runs selects from, in the order they are made.
const (
	runCache   = "cache"
	runNoCache = "nocache"
	runCut     = "cut"
)

var runNames = map[string]string{runCache: "cache", runNoCache: "no cache", runCut: "cache, Redis cut at 50%"}

// result is one run's measurements.
type result struct {
	name                    string
	elapsed                 time.Duration
	cpu                     time.Duration // process user+sys time in the measured phase; 0 if unknown
	redirects, creates      *sim.Recorder
	redirectErrors, limited atomic.Int64
	createErrors            atomic.Int64
	redisCmds               map[string]int // sent in the measured phase; nil without Redis
	note                    string
}

func (r *result) requests() int64 { return r.redirects.Count() + r.creates.Count() + r.limited.Load() }

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(out)
	var cfg config
	var runs string
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "length of each run")
	fs.IntVar(&cfg.concurrency, "concurrency", 32, "concurrent clients")
	fs.IntVar(&cfg.codes, "codes", 2000, "codes created before each run (the popular set)")
	fs.Float64Var(&cfg.zipf, "zipf", 1.1, "Zipf exponent of code popularity")
	fs.Float64Var(&cfg.createPct, "create", 0.05, "fraction of requests that create a link")
	fs.IntVar(&cfg.instances, "instances", 3, "service instances behind the load balancer")
	fs.StringVar(&cfg.redisAddr, "redis", envOr("REDIS_ADDR", "127.0.0.1:6379"), "Redis for the L2, the global limit and the outage run; empty: none")
	fs.StringVar(&cfg.target, "target", "", "base URL of a running service to drive instead of in-process clusters")
	fs.Uint64Var(&cfg.seed, "seed", 1, "workload seed")
	fs.StringVar(&runs, "runs", "cache,nocache,cut", "comma-separated runs: cache, nocache, cut")
	fs.IntVar(&cfg.repeat, "repeat", 1, "make the runs this many times, alternating, to see the machine's noise")
	fs.DurationVar(&cfg.storeLatency, "store-latency", 0, "delay added to every store read, standing in for a networked database")
	fs.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of each run's measured phase to <prefix>-<run>.pprof")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.duration <= 0, cfg.concurrency < 1, cfg.codes < 1, cfg.instances < 1, cfg.repeat < 1:
		return fmt.Errorf("need positive -duration, -concurrency, -codes, -instances and -repeat (got %v, %d, %d, %d, %d)",
			cfg.duration, cfg.concurrency, cfg.codes, cfg.instances, cfg.repeat)
	case !(cfg.zipf > 0), !(cfg.createPct >= 0 && cfg.createPct <= 1):
		return fmt.Errorf("need -zipf > 0 and -create in [0, 1] (got %v, %v)", cfg.zipf, cfg.createPct)
	case cfg.storeLatency < 0:
		return fmt.Errorf("-store-latency %v: must not be negative", cfg.storeLatency)
	}
	for r := range strings.SplitSeq(runs, ",") {
		r = strings.TrimSpace(r)
		if runNames[r] == "" {
			return fmt.Errorf("-runs: unknown run %q (want cache, nocache or cut)", r)
		}
		if !slices.Contains(cfg.runs, r) {
			cfg.runs = append(cfg.runs, r)
		}
	}
	var results []*result
	if cfg.target != "" {
		r, err := drive(ctx, cfg, "target "+cfg.target, cfg.target, nil, nil)
		if err != nil {
			return err
		}
		results = append(results, r)
	} else {
		rdb := redisClient(ctx, cfg.redisAddr)
		if rdb != nil {
			defer rdb.Close()
		}
		for i := range cfg.repeat {
			for _, key := range cfg.runs {
				name := runNames[key]
				if cfg.repeat > 1 {
					name += fmt.Sprintf(" #%d", i+1)
				}
				if key == runCut && rdb == nil {
					fmt.Fprintf(out, "skipping %q: no Redis at %q\n", name, cfg.redisAddr)
					continue
				}
				r, err := runCluster(ctx, cfg, name, key, rdb)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				results = append(results, r)
			}
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

// runCluster starts a fresh cluster, behind a cuttable Redis proxy when
// Redis is available, and drives it.
func runCluster(ctx context.Context, cfg config, name, key string, rdb *redis.Client) (*result, error) {
	dir, err := os.MkdirTemp("", "shortener-loadtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	scfg := service.Config{
		NoCache: key == runNoCache, ClickInterval: 100 * time.Millisecond,
		// One client IP makes every creation: lift the per-IP limit so
		// the run measures the service, not the limiter.
		CreateLimit: ratelimit.Limit{Events: 1_000_000, Per: time.Second, Burst: 1_000_000},
		BreakerOpen: time.Second,
	}
	var proxy *tcpproxy.Proxy
	var cmds *cmdCounter
	if rdb != nil {
		proxy, err = tcpproxy.New(rdb.Options().Addr)
		if err != nil {
			return nil, err
		}
		defer proxy.Close()
		pc := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialTimeout: 100 * time.Millisecond, PoolSize: 4 * cfg.concurrency})
		defer pc.Close()
		cmds = &cmdCounter{}
		pc.AddHook(cmds)
		scfg.Redis = pc
		scfg.RedisPrefix = fmt.Sprintf("shortener-loadtest:%d:", time.Now().UnixNano())
		defer purge(rdb, scfg.RedisPrefix)
	}
	c, err := service.Start(ctx, service.ClusterConfig{DataDir: dir, Instances: cfg.instances, StoreLatency: cfg.storeLatency, Service: scfg})
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(sctx)
	}()
	var before, atCut []service.Stats
	var onHalf func()
	if key == runCut {
		onHalf = func() { atCut = stats(c); proxy.Cut() }
	}
	onStart := func() {
		before = stats(c)
		if cmds != nil {
			cmds.on.Store(true)
		}
	}
	r, err := drive(ctx, cfg, name, c.URL(), onStart, onHalf)
	if err != nil {
		return nil, err
	}
	after := stats(c)
	if cmds != nil {
		cmds.on.Store(false)
		r.redisCmds = cmds.take()
	}
	switch key {
	case runCut:
		var failed, rejected uint64
		for i, st := range after {
			failed += (st.L2Errors - st.BreakerRejected) - (atCut[i].L2Errors - atCut[i].BreakerRejected)
			rejected += st.BreakerRejected - atCut[i].BreakerRejected
		}
		r.note = fmt.Sprintf("after the cut %d Redis calls failed and the breakers short-circuited %d more", failed, rejected)
	case runCache:
		var l1, l2, lookups uint64
		for i, st := range after {
			l1 += st.L1Hits - before[i].L1Hits
			l2 += st.L2Hits - before[i].L2Hits
			lookups += st.Cache.Hits + st.Cache.Misses - before[i].Cache.Hits - before[i].Cache.Misses
		}
		n := float64(max(lookups, 1))
		r.note = fmt.Sprintf("cache hit ratio %.1f%% (L1 %.1f%%, L2 %.1f%%, store %.1f%% of %d lookups), Redis L2 %v",
			100*float64(l1+l2)/n, 100*float64(l1)/n, 100*float64(l2)/n, 100*float64(lookups-l1-l2)/n, lookups, scfg.Redis != nil)
	}
	return r, nil
}

func stats(c *service.Cluster) []service.Stats {
	out := make([]service.Stats, len(c.Instances))
	for i, s := range c.Instances {
		out[i] = s.Stats()
	}
	return out
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

// cmdCounter counts the commands a Redis client sends, by name, while
// on; connection set-up (HELLO, CLIENT) is not counted.
type cmdCounter struct {
	on atomic.Bool
	mu sync.Mutex
	n  map[string]int // guarded by mu
}

func (c *cmdCounter) count(cmds ...redis.Cmder) {
	if !c.on.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	for _, cmd := range cmds {
		if name := cmd.Name(); name != "hello" && name != "client" {
			c.n[name]++
		}
	}
}

// take returns the counts so far and starts again from zero.
func (c *cmdCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	if n == nil {
		n = map[string]int{}
	}
	return n
}

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.count(cmd); return next(ctx, cmd) }
}

func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.count(cmds...); return next(ctx, cmds) }
}

// drive creates the popular codes, then runs the mix for cfg.duration.
// onStart, if set, runs when the measured phase begins; onHalf half-way
// through.
func drive(ctx context.Context, cfg config, name, base string, onStart, onHalf func()) (*result, error) {
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
					if err == nil {
						err = fmt.Errorf("status %d", status)
					}
					if status == http.StatusTooManyRequests {
						err = fmt.Errorf("%w: the service limits creations per client IP; start it with a -create-rate and -create-burst above -codes", err)
					}
					mu.Lock()
					seedErr = errors.Join(seedErr, fmt.Errorf("creating code %d: %w", i, err))
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
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile + "-" + slug(name) + ".pprof")
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	if onStart != nil {
		onStart()
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	if onHalf != nil {
		wg.Go(func() { // the wait below orders onHalf's writes before the caller's reads
			t := time.NewTimer(cfg.duration / 2)
			defer t.Stop()
			select {
			case <-t.C:
				onHalf()
			case <-ctx.Done():
			}
		})
	}
	cpu0 := cpuTime()
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
	if cpu1 := cpuTime(); cpu0 > 0 && cpu1 > cpu0 {
		r.cpu = cpu1 - cpu0
	}
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
	fmt.Fprintf(out, "%d clients, %v per run, %d popular codes (Zipf %.2f), %.0f%% creates, %d instances, store reads +%v\n\n",
		cfg.concurrency, cfg.duration, cfg.codes, cfg.zipf, 100*cfg.createPct, cfg.instances, cfg.storeLatency)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\treq/s\tCPU/req\tredirect p50\tp99\tp99.9\tcreate p50\tp99\tRedis cmds/req\tredirect errors\tcreate errors\t429s\t")
	for _, r := range results {
		red, cre := r.redirects.Summary(), r.creates.Summary()
		n := r.requests()
		cpu, cmds := "-", "-"
		if r.cpu > 0 && n > 0 {
			cpu = (r.cpu / time.Duration(n)).Round(time.Microsecond).String()
		}
		if r.redisCmds != nil {
			total := 0
			for _, c := range r.redisCmds {
				total += c
			}
			cmds = fmt.Sprintf("%.3f", float64(total)/float64(max(n, 1)))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%v\t%v\t%v\t%v\t%v\t%s\t%d\t%d\t%d\t\n", r.name, float64(n)/r.elapsed.Seconds(), cpu,
			round(red.P50), round(red.P99), round(red.P999), round(cre.P50), round(cre.P99), cmds,
			r.redirectErrors.Load(), r.createErrors.Load(), r.limited.Load())
	}
	_ = tw.Flush()
	for _, r := range results {
		if r.note != "" {
			fmt.Fprintf(out, "%s: %s\n", r.name, r.note)
		}
		if r.redisCmds != nil {
			parts := []string{}
			for _, name := range slices.Sorted(maps.Keys(r.redisCmds)) {
				parts = append(parts, fmt.Sprintf("%s %d", name, r.redisCmds[name]))
			}
			fmt.Fprintf(out, "%s: Redis commands for %d redirects and %d creations: [%s]\n", r.name,
				r.redirects.Count(), r.creates.Count()+r.limited.Load(), strings.Join(parts, ", "))
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

// slug returns name as a file-name fragment: lower case, every run of
// characters other than letters and digits as one '-'.
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	return b.String()
}

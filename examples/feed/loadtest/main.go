// Command loadtest drives the feed service with a synthetic social graph
// and Twitter's read:write ratio, once per feed strategy, and reports
// what each strategy costs:
//
//   - a graph of -users users generated from -seed, each following
//     -follows others on average, whom they pick from a Zipf law (-zipf),
//     so follower counts are heavy-tailed: u0 has a large share of all
//     users, most have tens or fewer;
//   - -posts posts and -ratio home-timeline reads per post (65, as
//     Twitter's 300k reads/s against 4.6k tweets/s in 2013), by
//     -concurrency clients over HTTP, with timelines capped at -cap;
//   - per strategy: write amplification (timeline inserts per post),
//     post-to-visible latency for a follower (probes poll a random
//     follower's home timeline after every -probe-every-th post), home
//     read latency p50/p99/p99.9, the Redis memory of the home
//     timelines, and what one post of the celebrity u0 costs;
//   - -sse users hold their notification streams (Server-Sent Events)
//     open: the run counts the notifications due (a post of a followee,
//     or a post mentioning the user, as a fifth of the posts do) and
//     those shown, and their delay from the post's creation;
//   - a share -search-share of the reads are full-text searches for a
//     topic word: search latency p50/p99, and the index lag (probes search
//     every -probe-every-th post's own word until it is found);
//   - with -shards N, users' data is placed on N redis-servers of the
//     run's own (Config.Shards), the sequence, queues, post stream and
//     pub/sub staying on -redis;
//   - with -cut D, Redis is cut (behind TCP proxies: -redis and every
//     shard) for D half-way through: the run counts the 503s and the
//     stale pages users got, and checks at the end that every
//     acknowledged post is still stored.
//
// Guide: "Real-World System Designs → 3. Social Media Feed";
// "Performance Considerations → Throughput Optimization → Load Testing";
// "Fault Tolerance" (the cut Redis). The exit status is 1 if an
// acknowledged post was lost.
//
//	go run ./examples/feed/loadtest -users 2000 -posts 100
//	go run ./examples/feed/loadtest -users 20000 -follows 20 -posts 1000 -strategies write,read,hybrid:1000 -shards 2
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/redisproc"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
	"github.com/sysdesign-go/sysdesign/ratelimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rs, err := run(ctx, os.Args[1:], os.Stdout)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
		}
		os.Exit(2)
	}
	for _, r := range rs {
		if r.Lost > 0 {
			os.Exit(1)
		}
	}
}

// config is a run's flags.
type config struct {
	users, follows, posts, ratio, cap, concurrency, probeEvery int
	sse, shards                                                int
	zipf, searchShare                                          float64
	seed                                                       uint64
	strategies                                                 []fanout.Strategy
	cut, pageTTL                                               time.Duration
	redisAddr, prefix                                          string
}

// Result is what one strategy's run measured.
type Result struct {
	Strategy string
	// Posts acknowledged and Reads answered.
	Posts, Reads int
	// Inserts is the number of timeline inserts; Amplification is
	// Inserts per post.
	Inserts       uint64
	Amplification float64
	// Visible is the post-to-visible latency for a follower; Read the
	// home read latency (answered reads, stale ones included).
	Visible, Read sim.Summary
	// TimelineBytes is the Redis memory of the home timelines (MEMORY
	// USAGE summed over them).
	TimelineBytes int64
	// Celebrity is the cost of one post of u0.
	Celebrity Celebrity
	// Unavailable and Stale count the reads answered 503 and stale while
	// Redis was cut; FailedPosts the posts refused then.
	Unavailable, Stale, FailedPosts int
	// Lost counts acknowledged posts missing at the end.
	Lost int
	// PageHits counts home reads served from the page cache.
	PageHits uint64
	// Searches answered, their latency, and the index lag: from a post's
	// acknowledgement until a search finds it (IndexMissed: never, within
	// 20 s).
	Searches         int
	Search, IndexLag sim.Summary
	IndexMissed      int
	// Notifications due on the open event streams and shown on them, and
	// the delay from a post's creation to its showing.
	NotifyDue, NotifyShown int
	Notify                 sim.Summary
}

// Celebrity is what one post of the most-followed user costs.
type Celebrity struct {
	Followers int
	// Inserts is the timeline inserts the post caused.
	Inserts uint64
	// Ack is the POST's latency; Done the time from the ack until its
	// fan-out job was done.
	Ack, Done time.Duration
	// FollowerRead is a follower's home read latency (median of 20) right
	// after.
	FollowerRead time.Duration
}

func run(ctx context.Context, args []string, out io.Writer) ([]Result, error) {
	cfg, err := parse(args, out)
	if err != nil {
		return nil, err
	}
	g := newGraph(cfg)
	fmt.Fprintf(out, "graph: %d users, %d follows, u0 has %d followers, median %d, max following %d\n",
		cfg.users, len(g.follows), len(g.followers[0]), g.medianFollowers(), g.maxFollowing())
	var shards []string
	for range cfg.shards {
		addr, stop, err := redisproc.Start(ctx)
		if err != nil {
			return nil, err
		}
		defer stop()
		shards = append(shards, addr)
	}
	var rs []Result
	for _, st := range cfg.strategies {
		r, err := runStrategy(ctx, cfg, g, st, shards)
		if err != nil {
			report(out, cfg, rs) // what the strategies before measured
			return rs, fmt.Errorf("strategy %s: %w", st, err)
		}
		rs = append(rs, r)
	}
	report(out, cfg, rs)
	return rs, nil
}

func parse(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	var c config
	fs.IntVar(&c.users, "users", 2000, "users in the graph")
	fs.IntVar(&c.follows, "follows", 20, "mean number of users each user follows")
	fs.Float64Var(&c.zipf, "zipf", 1, "Zipf exponent of whom users follow (higher: more concentrated on a few celebrities)")
	fs.IntVar(&c.posts, "posts", 100, "posts per strategy")
	fs.IntVar(&c.ratio, "ratio", 65, "home reads per post")
	fs.IntVar(&c.cap, "cap", 800, "home timeline cap")
	fs.IntVar(&c.concurrency, "concurrency", 8, "concurrent clients")
	fs.IntVar(&c.probeEvery, "probe-every", 5, "probe the post-to-visible latency of every Nth post")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the graph and the workload")
	fs.IntVar(&c.sse, "sse", 200, "users holding their notification stream open")
	fs.Float64Var(&c.searchShare, "search-share", 0.05, "share of the reads that are full-text searches")
	fs.IntVar(&c.shards, "shards", 0, "place users' data on this many redis-servers of the run's own (Config.Shards); 0: all on -redis")
	fs.DurationVar(&c.cut, "cut", 0, "cut Redis for this long half-way through each run; 0: no cut")
	fs.DurationVar(&c.pageTTL, "page-ttl", 0, "the service's -page-ttl: cache first home pages in L1 + Redis L2; 0: no page cache")
	fs.StringVar(&c.redisAddr, "redis", addr, "Redis address (env REDIS_ADDR)")
	fs.StringVar(&c.prefix, "prefix", "", "Redis key prefix (default loadtest:<random>:); every key under it is deleted at the end")
	strategies := fs.String("strategies", "write,read,hybrid:100", "comma-separated strategies: write, read, hybrid:N")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, p := range []struct {
		name string
		v    int
		min  int
	}{{"users", c.users, 3}, {"follows", c.follows, 1}, {"posts", c.posts, 1}, {"ratio", c.ratio, 0}, {"cap", c.cap, 1},
		{"concurrency", c.concurrency, 1}, {"probe-every", c.probeEvery, 1}, {"sse", c.sse, 0}, {"shards", c.shards, 0}} {
		if p.v < p.min {
			return c, fmt.Errorf("-%s %d: want at least %d", p.name, p.v, p.min)
		}
	}
	if c.follows >= c.users {
		return c, fmt.Errorf("-follows %d: want fewer than -users %d", c.follows, c.users)
	}
	if c.sse > c.users {
		return c, fmt.Errorf("-sse %d: want at most -users %d", c.sse, c.users)
	}
	if !(c.searchShare >= 0 && c.searchShare <= 1) {
		return c, fmt.Errorf("-search-share %v: want a share from 0 to 1", c.searchShare)
	}
	if c.zipf <= 0 {
		return c, fmt.Errorf("-zipf %v: want a positive exponent", c.zipf)
	}
	if c.cut < 0 || c.pageTTL < 0 {
		return c, fmt.Errorf("-cut %v, -page-ttl %v: must not be negative", c.cut, c.pageTTL)
	}
	for _, s := range strings.Split(*strategies, ",") {
		st, err := fanout.Parse(strings.TrimSpace(s))
		if err != nil {
			return c, fmt.Errorf("-strategies: %w", err)
		}
		c.strategies = append(c.strategies, st)
	}
	if c.prefix == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.prefix = "loadtest:" + hex.EncodeToString(b[:]) + ":"
	}
	return c, nil
}

// graph is the synthetic follow graph.
type graph struct {
	users     []string
	follows   []service.Follow
	followers [][]int // by user index
	following []int   // counts
}

// newGraph gives each user a number of followees uniform in [1,
// 2·follows−1] and draws each followee from a Zipf law over the users, so
// user i's follower count falls as 1/(i+1)^zipf.
func newGraph(c config) *graph {
	r := sim.NewRand(c.seed, 1)
	z, err := sim.NewZipf(r, c.zipf, uint64(c.users))
	if err != nil {
		panic(err) // parse checked the parameters
	}
	g := &graph{users: make([]string, c.users), followers: make([][]int, c.users), following: make([]int, c.users)}
	for i := range g.users {
		g.users[i] = "u" + strconv.Itoa(i)
	}
	for u := range c.users {
		k := 1 + r.IntN(2*c.follows-1)
		seen := map[int]bool{u: true}
		for tries := 0; len(seen) <= k && tries < 20*k; tries++ {
			v := int(z.Next())
			if seen[v] {
				continue
			}
			seen[v] = true
			g.follows = append(g.follows, service.Follow{From: g.users[u], To: g.users[v]})
			g.followers[v] = append(g.followers[v], u)
			g.following[u]++
		}
	}
	return g
}

func (g *graph) medianFollowers() int {
	n := make([]int, len(g.followers))
	for i, f := range g.followers {
		n[i] = len(f)
	}
	slices.Sort(n)
	return n[len(n)/2]
}

func (g *graph) maxFollowing() int { return slices.Max(g.following) }

// client calls the service as the graph's users.
type client struct {
	url    string
	http   *http.Client
	tokens []string
}

func (c *client) do(ctx context.Context, user int, method, path, body string) (int, []byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.tokens[user])
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (c *client) home(ctx context.Context, g *graph, user int) (int, service.Page, error) {
	code, b, err := c.do(ctx, user, "GET", "/api/v1/users/"+g.users[user]+"/home", "") // the default page, the one the page cache keeps
	var p service.Page
	if err == nil && code == http.StatusOK {
		err = json.Unmarshal(b, &p)
	}
	return code, p, err
}

func (c *client) post(ctx context.Context, user int, text string) (int, service.Post, error) {
	code, b, err := c.do(ctx, user, "POST", "/api/v1/posts", `{"text":`+strconv.Quote(text)+`}`)
	var p service.Post
	if err == nil && code == http.StatusCreated {
		err = json.Unmarshal(b, &p)
	}
	return code, p, err
}

// runStrategy runs the workload on a fresh key space with strategy st,
// users' data on the redis-servers shards (none: on -redis).
func runStrategy(ctx context.Context, cfg config, g *graph, st fanout.Strategy, shards []string) (Result, error) {
	res := Result{Strategy: st.String()}
	prefix := cfg.prefix + strings.ReplaceAll(st.String(), ":", "-") + ":"
	// Every Redis behind a proxy the cut drops; no client retries: the
	// service's breaker and timeout decide what users see.
	var proxies []*tcpproxy.Proxy
	defer func() {
		for _, p := range proxies {
			_ = p.Close()
		}
	}()
	connect := func(addr string) (*redis.Client, error) {
		proxy, err := tcpproxy.New(addr)
		if err != nil {
			return nil, err
		}
		proxies = append(proxies, proxy)
		return redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true, DialTimeout: 200 * time.Millisecond, MaxRetries: -1, PoolSize: 4*cfg.concurrency + 2*cfg.sse}), nil
	}
	rdb, err := connect(cfg.redisAddr)
	if err != nil {
		return res, err
	}
	defer rdb.Close()
	defer purge(cfg.redisAddr, prefix)
	var shardDBs []redis.UniversalClient
	dataDBs := []*redis.Client{rdb} // where the home timelines are
	for _, addr := range shards {
		db, err := connect(addr)
		if err != nil {
			return res, err
		}
		defer db.Close()
		defer purge(addr, prefix)
		shardDBs = append(shardDBs, db)
		dataDBs = append(dataDBs, db)
	}
	if len(shards) > 0 {
		dataDBs = dataDBs[1:]
	}
	searchDir, err := os.MkdirTemp("", "feed-loadtest-index-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(searchDir)
	tokens, err := service.NewTokens([]byte("loadtest-key-0123456789abcdef0123"))
	if err != nil {
		return res, err
	}
	svc, err := service.New(ctx, service.Config{
		Redis: rdb, Shards: shardDBs, Prefix: prefix, SearchDir: filepath.Join(searchDir, "index"), Strategy: st, TimelineCap: cfg.cap, Authenticate: tokens.User,
		WriteLimit:   ratelimit.Limit{Events: 1 << 20, Per: time.Second, Burst: 1 << 20},
		RedisTimeout: 500 * time.Millisecond, BreakerOpen: 250 * time.Millisecond, PageTTL: cfg.pageTTL,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return res, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = svc.Close(cctx)
	}()
	if err := svc.Import(ctx, g.users, g.follows); err != nil {
		return res, fmt.Errorf("importing the graph: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	c := &client{url: "http://" + ln.Addr().String(), http: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 4 * cfg.concurrency}}, tokens: make([]string, len(g.users))}
	for i, u := range g.users {
		if c.tokens[i], err = tokens.Issue(u, time.Hour); err != nil {
			return res, err
		}
	}
	// The event streams, open before the first post.
	pick := sim.NewRand(cfg.seed, 2)
	watching := pick.Perm(len(g.users))[:cfg.sse]
	notes := newNotifications(watching)
	sseCtx, stopSSE := context.WithCancel(ctx)
	var streams sync.WaitGroup
	defer func() { stopSSE(); streams.Wait() }()
	sseHTTP := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.sse}}
	var readies []chan struct{}
	// Opened 16 at a time, so that their subscriptions do not time out
	// together and open the Redis breaker.
	opened := time.After(time.Minute)
	for i, u := range watching {
		if i >= 16 {
			select {
			case <-readies[i-16]:
			case <-opened:
				return res, fmt.Errorf("the event stream of %s did not open in 1 min", g.users[watching[i-16]])
			}
		}
		ready := make(chan struct{})
		readies = append(readies, ready)
		streams.Add(1)
		go func() { defer streams.Done(); stream(sseCtx, c, sseHTTP, g, u, notes, ready) }()
	}
	for i, ready := range readies {
		select {
		case <-ready:
		case <-opened:
			return res, fmt.Errorf("the event stream of %s did not open in 1 min", g.users[watching[i]])
		}
	}

	var (
		next                       atomic.Int64
		mu                         sync.Mutex
		acked                      []string
		reads, unavail, stale, bad atomic.Int64
		failedPosts, searches      atomic.Int64
		indexMissed                atomic.Int64
		readLat, visLat            = sim.NewRecorder(), sim.NewRecorder()
		searchLat, lagLat          = sim.NewRecorder(), sim.NewRecorder()
		probes                     sync.WaitGroup
		cutOnce                    sync.Once
		cutDone                    = make(chan struct{})
	)
	total := int64(cfg.posts * (cfg.ratio + 1))
	if cfg.cut == 0 {
		close(cutDone)
	}
	var wg sync.WaitGroup
	for w := range cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := sim.NewRand(cfg.seed, uint64(100+w))
			for {
				i := next.Add(1) - 1
				if i >= total || ctx.Err() != nil {
					return
				}
				if cfg.cut > 0 && i >= total/2 {
					cutOnce.Do(func() {
						for _, p := range proxies {
							p.Cut()
						}
						time.AfterFunc(cfg.cut, func() {
							for _, p := range proxies {
								p.Restore()
							}
							close(cutDone)
						})
					})
				}
				if i%int64(cfg.ratio+1) != 0 && r.Float64() < cfg.searchShare {
					start := time.Now()
					code, _, err := c.search(ctx, r.IntN(len(g.users)), topics[r.IntN(len(topics))])
					switch {
					case err == nil && code == http.StatusOK:
						searchLat.Record(time.Since(start))
						searches.Add(1)
					case err == nil && code == http.StatusServiceUnavailable:
						unavail.Add(1)
					default:
						bad.Add(1)
					}
					continue
				}
				if i%int64(cfg.ratio+1) != 0 {
					start := time.Now()
					code, p, err := c.home(ctx, g, r.IntN(len(g.users)))
					switch {
					case err == nil && code == http.StatusOK:
						readLat.Record(time.Since(start))
						reads.Add(1)
						if p.Stale {
							stale.Add(1)
						}
					case err == nil && code == http.StatusServiceUnavailable:
						unavail.Add(1)
					default:
						bad.Add(1)
					}
					continue
				}
				author, mentioned := r.IntN(len(g.users)), -1
				word := "w" + strconv.FormatInt(i, 36) // this post's own word, for the index lag
				text := fmt.Sprintf("post %d by %s about %s %s", i, g.users[author], topics[r.IntN(len(topics))], word)
				if len(watching) > 0 && r.IntN(5) == 0 {
					mentioned = watching[r.IntN(len(watching))]
					text += " @" + g.users[mentioned]
				}
				code, p, err := c.post(ctx, author, text)
				if err != nil || code != http.StatusCreated {
					failedPosts.Add(1)
					continue
				}
				acked0 := time.Now()
				notes.expect(g, p.ID, author, mentioned)
				mu.Lock()
				acked = append(acked, p.ID)
				n := len(acked)
				mu.Unlock()
				if n%cfg.probeEvery == 0 {
					probes.Add(1)
					go func() {
						defer probes.Done()
						if d, ok := indexProbe(ctx, c, word, acked0); ok {
							lagLat.Record(d)
						} else {
							indexMissed.Add(1)
						}
					}()
				}
				if fs := g.followers[author]; n%cfg.probeEvery == 0 && len(fs) > 0 {
					f := fs[r.IntN(len(fs))]
					probes.Add(1)
					go func() {
						defer probes.Done()
						if d, ok := probe(ctx, c, g, f, p.ID, acked0); ok {
							visLat.Record(d)
						}
					}()
				}
			}
		}()
	}
	wg.Wait()
	probes.Wait()
	<-cutDone
	if n := bad.Load(); n > 0 {
		return res, fmt.Errorf("%d home reads or searches failed other than with 503", n)
	}
	// As many fan-out jobs done as posts acknowledged. (A post stored but
	// refused in the cut, its job not queued, is counted in Stats.Posts
	// and has no job until it is resent.)
	if err := waitFor(ctx, func() bool { return svc.Stats().FanOutJobs >= uint64(len(acked)) }); err != nil {
		return res, fmt.Errorf("fan-out did not settle (%+v): %w", svc.Stats(), err)
	}
	stats := svc.Stats()
	res.Posts, res.Reads = len(acked), int(reads.Load())
	res.Inserts, res.PageHits = stats.TimelineInserts, stats.PageHits
	res.Amplification = float64(stats.TimelineInserts) / float64(max(1, stats.Posts))
	res.Read, res.Visible = readLat.Summary(), visLat.Summary()
	res.Unavailable, res.Stale, res.FailedPosts = int(unavail.Load()), int(stale.Load()), int(failedPosts.Load())
	res.Searches, res.Search, res.IndexLag, res.IndexMissed = int(searches.Load()), searchLat.Summary(), lagLat.Summary(), int(indexMissed.Load())
	// The last notifications in flight: wait until every one due is shown,
	// or for a second without progress (the ones lost in the cut).
	for last, since := -1, time.Now(); time.Since(since) < time.Second; time.Sleep(10 * time.Millisecond) {
		due, shown := notes.counts()
		if shown == due {
			break
		}
		if shown != last {
			last, since = shown, time.Now()
		}
	}
	res.NotifyDue, res.NotifyShown = notes.counts()
	res.Notify = notes.delay.Summary()
	for _, id := range acked {
		var code int
		_ = waitFor(ctx, func() bool {
			code, _, err = c.do(ctx, 0, "GET", "/api/v1/posts/"+id, "")
			return err != nil || code != http.StatusServiceUnavailable // the breaker may still be open after the cut
		})
		if err != nil || code != http.StatusOK {
			res.Lost++
		}
	}
	for _, db := range dataDBs {
		n, err := timelineMemory(ctx, db, prefix)
		if err != nil {
			return res, err
		}
		res.TimelineBytes += n
	}
	// No fan-out job left running (a resent or redelivered one) before
	// the celebrity's post is timed.
	for last := svc.Stats().FanOutJobs; ; {
		time.Sleep(300 * time.Millisecond)
		now := svc.Stats().FanOutJobs
		if now == last {
			break
		}
		last = now
	}
	res.Celebrity, err = celebrity(ctx, c, g, svc)
	return res, err
}

// probe polls follower's home timeline until post id shows, and returns
// the time since acked.
func probe(ctx context.Context, c *client, g *graph, follower int, id string, acked time.Time) (time.Duration, bool) {
	deadline := acked.Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		code, p, err := c.home(ctx, g, follower)
		if err == nil && code == http.StatusOK && !p.Stale {
			for _, q := range p.Posts {
				if q.ID == id {
					return time.Since(acked), true
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, false
}

// celebrity posts once as u0 and measures what it costs.
func celebrity(ctx context.Context, c *client, g *graph, svc *service.Service) (Celebrity, error) {
	cel := Celebrity{Followers: len(g.followers[0])}
	before := svc.Stats()
	var code int
	var err error
	if werr := waitFor(ctx, func() bool {
		start := time.Now()
		code, _, err = c.post(ctx, 0, "a celebrity speaks")
		cel.Ack = time.Since(start)
		return err != nil || code != http.StatusServiceUnavailable // the breaker may still be open after the cut
	}); werr != nil || err != nil || code != http.StatusCreated {
		return cel, fmt.Errorf("celebrity post: %d %v %v", code, err, werr)
	}
	acked := time.Now()
	if err := waitFor(ctx, func() bool { return svc.Stats().FanOutJobs > before.FanOutJobs }); err != nil {
		return cel, err
	}
	cel.Done = time.Since(acked)
	cel.Inserts = svc.Stats().TimelineInserts - before.TimelineInserts
	if len(g.followers[0]) > 0 {
		rec := sim.NewRecorder()
		for range 20 {
			t := time.Now()
			if _, _, err := c.home(ctx, g, g.followers[0][0]); err != nil {
				return cel, err
			}
			rec.Record(time.Since(t))
		}
		cel.FollowerRead = rec.Percentile(50)
	}
	return cel, nil
}

// timelineMemory sums MEMORY USAGE over the home timelines under prefix.
func timelineMemory(ctx context.Context, rdb *redis.Client, prefix string) (int64, error) {
	var total int64
	iter := rdb.Scan(ctx, 0, prefix+"u:*:home", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return 0, err
	}
	for i := 0; i < len(keys); i += 1000 {
		p := rdb.Pipeline()
		var cmds []*redis.IntCmd
		for _, k := range keys[i:min(i+1000, len(keys))] {
			cmds = append(cmds, p.MemoryUsage(ctx, k))
		}
		if _, err := p.Exec(ctx); err != nil {
			return 0, err
		}
		for _, c := range cmds {
			total += c.Val()
		}
	}
	return total, nil
}

// purge deletes every key under prefix, through a client of its own (the
// run's may be cut).
func purge(addr, prefix string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 1000 {
			_ = rdb.Unlink(ctx, keys...).Err()
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		_ = rdb.Unlink(ctx, keys...).Err()
	}
}

// waitFor polls cond for up to a minute.
func waitFor(ctx context.Context, cond func() bool) error {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out after 1m")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func report(out io.Writer, cfg config, rs []Result) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "strategy\tposts\treads\tinserts/post\tvisible p50\tp99\tread p50\tp99\tp99.9\ttimelines KiB\tceleb inserts\tceleb done\tceleb fan read\t503s\tstale\tlost\tpage hits\tsearches\tsearch p50\tp99\tindex lag p50\tp99\tindex missed\tnotified\tof due\tnotify p50\tp99\t\n")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%.1f\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t\n",
			r.Strategy, r.Posts, r.Reads, r.Amplification, ms(r.Visible.P50), ms(r.Visible.P99),
			ms(r.Read.P50), ms(r.Read.P99), ms(r.Read.P999), float64(r.TimelineBytes)/(1<<10),
			r.Celebrity.Inserts, ms(r.Celebrity.Done), ms(r.Celebrity.FollowerRead), r.Unavailable, r.Stale, r.Lost, r.PageHits,
			r.Searches, ms(r.Search.P50), ms(r.Search.P99), ms(r.IndexLag.P50), ms(r.IndexLag.P99), r.IndexMissed, r.NotifyShown, r.NotifyDue, ms(r.Notify.P50), ms(r.Notify.P99))
	}
	_ = w.Flush()
	if cfg.shards > 0 {
		fmt.Fprintf(out, "users' data on %d redis-servers of the run's own; the sequence, queues, post stream and pub/sub on -redis.\n", cfg.shards)
	}
	if cfg.cut > 0 {
		fmt.Fprintf(out, "Redis cut for %v half-way: reads got 503 problem+json or the user's last page marked stale; posts got 503 and were not acknowledged.\n", cfg.cut)
	}
}

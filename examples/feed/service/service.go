package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/cache/rediscache"
	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/examples/internal/blob"
	"github.com/sysdesign-go/sysdesign/ratelimit"
	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/dlq"
	"github.com/sysdesign-go/sysdesign/resilience/dlq/redisdlq"
	"github.com/sysdesign-go/sysdesign/shard"
)

// Config configures a feed service. Redis and Authenticate are required;
// every other zero field has the default its doc names.
type Config struct {
	// Redis holds the post sequence, the fan-out queues, the post stream
	// (search), the page cache's L2 and the notification channel, and,
	// unless Shards is set, every user's data: posts, the follow graph,
	// timelines. Required; a single node or a Cluster client.
	Redis redis.UniversalClient
	// Shards, when set, hold the users' data instead: each user's keys
	// (profile, posts and post index, follow lists, home timeline, like
	// sets, idempotency keys) live on the shard a consistent-hash ring
	// places the user ID on (shard.NewRing over shards named "0" to
	// "n-1", in this order), so a shard added later moves about 1/(n+1)
	// of the users. A post is read from its author's shard (its ID names
	// the author); a fan-out job writes one pipeline per shard of the
	// author's followers; a read merged from several followees reads
	// their shards in parallel. Every instance must be given the same
	// shards in the same order. Each may be a single node or a Cluster
	// client; Redis may be one of them. Default: all on Redis.
	Shards []redis.UniversalClient
	// Prefix starts every Redis key, so deployments (and tests) sharing a
	// Redis stay apart. Default "feed:". It must not contain braces.
	Prefix string
	// Strategy decides which posts are pushed on write and which are
	// merged on read. The zero value is fanout.OnRead.
	Strategy fanout.Strategy
	// Ranking orders each home page by score. The zero value keeps the
	// chronological order.
	Ranking Ranking
	// TimelineCap is the number of entries a home timeline keeps; older
	// pushed entries are trimmed. Default 800, Twitter's.
	TimelineCap int
	// Queues is the number of fan-out Streams; authors are placed on them
	// by Maglev. Default 2.
	Queues int
	// Instance names this process's consumer of the fan-out queues; reuse
	// it across restarts to take back the jobs it held. Default a random
	// name.
	Instance string
	// FanOutAttempts is the number of deliveries of a fan-out job before
	// it is dead-lettered. Default 5.
	FanOutAttempts int
	// Authenticate maps a request to its user ID, or fails (the request
	// is answered 401). Required: pass [Tokens.User], or an identity of
	// your own.
	Authenticate func(*http.Request) (string, error)
	// WriteLimit bounds each user's writes (posts, follows). Default 10/s
	// with a burst of 20.
	WriteLimit ratelimit.Limit
	// MaxPostRunes bounds a post's text. Default 280.
	MaxPostRunes int
	// MaxMedia bounds the media references of a post. Default 4.
	MaxMedia int
	// IdempotencyTTL is how long an Idempotency-Key is remembered.
	// Default 24 h.
	IdempotencyTTL time.Duration
	// RedisTimeout bounds every Redis call. Default 1 s.
	RedisTimeout time.Duration
	// BreakerOpen is how long the Redis breaker stays open before a
	// probe. Default 1 s.
	BreakerOpen time.Duration
	// CountTTL is how long a follower count read by a hybrid read is
	// cached in process. Default 10 s.
	CountTTL time.Duration
	// SearchDir is the directory of this instance's full-text index
	// (bleve), created if missing. Default "": search is off (404).
	SearchDir string
	// SearchConcurrency bounds the searches that run at once (a bulkhead:
	// searches beyond it are answered 503 at once, so that a burst of
	// costly queries cannot take the CPU timelines need). Default 8.
	SearchConcurrency int
	// SearchTimeout bounds one search of the index. Default 2 s.
	SearchTimeout time.Duration
	// PageTTL turns on the cache of personalized first pages (see
	// pages.go) and bounds how stale a cached page may be: pushed and own
	// posts show at once, pulled posts, likes and replies within PageTTL.
	// Default 0: no page cache.
	PageTTL time.Duration
	// StaleFor is how long a user's last home page is kept to be served,
	// marked stale, while Redis is unavailable. Default 5 min.
	StaleFor time.Duration
	// Media stores attachments (POST /api/v1/media); a post's media
	// references must name stored blobs. Default nil: uploads are off
	// (404) and references are only checked for their shape.
	Media *blob.Store
	// Logger receives the service's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock of post timestamps. Default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() error {
	if c.Redis == nil {
		return fmt.Errorf("%w: Redis is required", ErrInvalidConfig)
	}
	if c.Authenticate == nil {
		return fmt.Errorf("%w: Authenticate is required", ErrInvalidConfig)
	}
	if c.Prefix == "" {
		c.Prefix = "feed:"
	}
	if strings.ContainsAny(c.Prefix, "{}") {
		return fmt.Errorf("%w: prefix %q has a brace, which would break the keys' hash tags", ErrInvalidConfig, c.Prefix)
	}
	if c.Strategy.Threshold < 0 {
		return fmt.Errorf("%w: strategy threshold %d is negative", ErrInvalidConfig, c.Strategy.Threshold)
	}
	if c.Instance == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.Instance = hex.EncodeToString(b[:])
	}
	ints := []struct {
		name string
		n    *int
		def  int
	}{{"TimelineCap", &c.TimelineCap, 800}, {"Queues", &c.Queues, 2}, {"FanOutAttempts", &c.FanOutAttempts, 5},
		{"MaxPostRunes", &c.MaxPostRunes, 280}, {"MaxMedia", &c.MaxMedia, 4}, {"SearchConcurrency", &c.SearchConcurrency, 8}}
	for _, n := range ints {
		if *n.n < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrInvalidConfig, n.name, *n.n)
		}
		if *n.n == 0 {
			*n.n = n.def
		}
	}
	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{{"IdempotencyTTL", &c.IdempotencyTTL, 24 * time.Hour}, {"RedisTimeout", &c.RedisTimeout, time.Second},
		{"BreakerOpen", &c.BreakerOpen, time.Second}, {"CountTTL", &c.CountTTL, 10 * time.Second},
		{"StaleFor", &c.StaleFor, 5 * time.Minute}, {"PageTTL", &c.PageTTL, 0}, {"SearchTimeout", &c.SearchTimeout, 2 * time.Second}}
	for _, d := range durations {
		if *d.d < 0 {
			return fmt.Errorf("%w: %s %v is negative", ErrInvalidConfig, d.name, *d.d)
		}
		if *d.d == 0 {
			*d.d = d.def
		}
	}
	if c.Ranking.HalfLife < 0 || c.Ranking.LikeWeight < 0 || c.Ranking.ReplyWeight < 0 ||
		math.IsNaN(c.Ranking.LikeWeight) || math.IsNaN(c.Ranking.ReplyWeight) || math.IsInf(c.Ranking.LikeWeight, 0) || math.IsInf(c.Ranking.ReplyWeight, 0) {
		return fmt.Errorf("%w: ranking %+v: half-life and weights must be finite and not negative", ErrInvalidConfig, c.Ranking)
	}
	if c.IdempotencyTTL < time.Second {
		return fmt.Errorf("%w: IdempotencyTTL %v is under a second", ErrInvalidConfig, c.IdempotencyTTL)
	}
	if c.WriteLimit == (ratelimit.Limit{}) {
		c.WriteLimit = ratelimit.Limit{Events: 10, Per: time.Second, Burst: 20}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Service is one feed instance: its HTTP API and its fan-out workers.
// Several instances may share a Redis (with distinct Instance names). It
// is safe for concurrent use. New starts one worker goroutine per fan-out
// queue; Close stops them.
type Service struct {
	cfg       Config
	st        *store
	pipe      *resilience.Pipeline[struct{}]
	breaker   *resilience.CircuitBreaker[struct{}]
	writeLim  *ratelimit.Keyed
	counts    *cache.Memory[string, int64]
	lastPages *cache.Memory[string, Page]
	pages     *rediscache.MultiLevel[cachedPage] // nil without PageTTL
	search    bleve.Index                        // nil without SearchDir
	searchBH  *resilience.Bulkhead
	searchRun *resilience.Pipeline[*bleve.SearchResult] // searchBH, then SearchTimeout
	metrics   *metrics
	handler   http.Handler
	placement *shard.Maglev
	queues    []*redisdlq.Queue
	workers   []*dlq.Worker

	runCtx    context.Context // ends when Close starts
	stop      context.CancelFunc
	wg        sync.WaitGroup // the workers' loops
	closeOnce sync.Once
}

// New starts a feed instance: it creates the fan-out queues in Redis and
// starts their workers, and with SearchDir opens the index and starts its
// indexer. ctx bounds start-up only.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	st, err := newStore(cfg.Redis, cfg.Shards, cfg.Prefix)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, st: st}
	trip, err := resilience.ConsecutiveFailures(3)
	if err != nil {
		return nil, err
	}
	s.breaker, err = resilience.NewCircuitBreaker[struct{}](resilience.BreakerOptions{
		Name: "redis", Timeout: cfg.BreakerOpen, Trip: trip,
		// A client error (an unknown user) is Redis answering, not failing.
		IsSuccessful: func(err error) bool {
			var e *Error
			return errors.As(err, &e) || isNil(err)
		},
		OnStateChange: func(sc resilience.StateChange) {
			cfg.Logger.Warn("redis breaker", "instance", cfg.Instance, "from", sc.From.String(), "to", sc.To.String())
		},
	})
	if err != nil {
		return nil, err
	}
	tm, err := resilience.NewTimeout[struct{}](resilience.TimeoutOptions{Name: "redis", Timeout: cfg.RedisTimeout})
	if err != nil {
		return nil, err
	}
	if s.pipe, err = resilience.NewPipeline[struct{}](s.breaker, tm); err != nil {
		return nil, err
	}
	if s.writeLim, err = ratelimit.NewKeyed(ratelimit.AlgGCRA, ratelimit.KeyedOptions{}, cfg.WriteLimit); err != nil {
		return nil, fmt.Errorf("%w: WriteLimit: %w", ErrInvalidConfig, err)
	}
	if s.counts, err = cache.NewMemory(100_000, cache.MemoryOptions[string, int64]{DefaultTTL: cfg.CountTTL, Now: cfg.Now}); err != nil {
		return nil, err
	}
	if s.lastPages, err = cache.NewMemory(10_000, cache.MemoryOptions[string, Page]{DefaultTTL: cfg.StaleFor, Now: cfg.Now}); err != nil {
		return nil, err
	}
	s.metrics = newMetrics(s)
	if err := s.newPages(ctx); err != nil {
		return nil, err
	}
	if cfg.SearchDir != "" {
		if s.search, err = openIndex(cfg.SearchDir); err != nil {
			return nil, err
		}
		if s.searchBH, err = resilience.NewBulkhead(resilience.BulkheadOptions{Name: "search", MaxConcurrent: cfg.SearchConcurrency}); err != nil {
			return nil, errors.Join(err, s.search.Close())
		}
		tm, err := resilience.NewTimeout[*bleve.SearchResult](resilience.TimeoutOptions{Name: "search", Timeout: cfg.SearchTimeout})
		if err != nil {
			return nil, errors.Join(err, s.search.Close())
		}
		if s.searchRun, err = resilience.NewPipeline(resilience.Guarded[*bleve.SearchResult](s.searchBH), tm); err != nil {
			return nil, errors.Join(err, s.search.Close())
		}
	}
	names := make([]string, cfg.Queues)
	for i := range names {
		names[i] = fmt.Sprintf("fanout-%d", i)
	}
	if s.placement, err = shard.NewMaglev(shard.NodesNamed(names...), shard.MaglevOptions{}); err != nil {
		return nil, err
	}
	for _, name := range names {
		q, err := redisdlq.New(ctx, cfg.Redis, name, redisdlq.Options{Prefix: cfg.Prefix, Group: "fanout", Consumer: cfg.Instance})
		if err != nil {
			return nil, fmt.Errorf("feed: fan-out queue %s: %w", name, err)
		}
		w, err := dlq.NewWorker(dlq.WorkerOptions{
			Queue: q, Handler: s.fanOut, MaxAttempts: cfg.FanOutAttempts, Wait: 200 * time.Millisecond,
			OnDeadLetter: func(d dlq.DeadLetter) {
				s.metrics.dead.Add(1)
				cfg.Logger.Error("fan-out job dead-lettered", "queue", name, "job", string(d.Body), "reason", d.Reason)
			},
		})
		if err != nil {
			return nil, err
		}
		s.queues, s.workers = append(s.queues, q), append(s.workers, w)
	}
	s.runCtx, s.stop = context.WithCancel(context.Background())
	s.handler = s.routes()
	for i, w := range s.workers {
		s.wg.Add(1)
		go s.work(s.runCtx, names[i], w)
	}
	if s.search != nil {
		s.wg.Add(1)
		go s.index(s.runCtx)
	}
	return s, nil
}

// work runs w until Close; when the queue fails (Redis is down) it
// starts again after a pause, taking back the jobs it held.
func (s *Service) work(ctx context.Context, name string, w *dlq.Worker) {
	defer s.wg.Done()
	for {
		err := w.Run(ctx)
		if err == nil || errors.Is(err, dlq.ErrClosed) || ctx.Err() != nil {
			return
		}
		s.cfg.Logger.Warn("fan-out worker stopped; restarting", "queue", name, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.BreakerOpen):
		}
	}
}

// Handler returns the service's HTTP handler.
func (s *Service) Handler() http.Handler { return s.handler }

// Strategy returns the service's fan-out strategy.
func (s *Service) Strategy() fanout.Strategy { return s.cfg.Strategy }

// Close ends the open event streams and stops the fan-out workers: the
// jobs in hand are finished, the rest stay queued for the next start.
// Other requests in flight still complete; call it before shutting the
// HTTP server down, which waits for the streams. It does not close the
// Redis client.
func (s *Service) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.stop()
		for _, w := range s.workers {
			err = errors.Join(err, w.Close(ctx))
		}
		if s.pages != nil {
			defer func() { err = errors.Join(err, s.pages.Close(ctx)) }()
		}
		if s.search != nil {
			defer func() { err = errors.Join(err, s.search.Close()) }() // after the indexer stopped
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = errors.Join(err, ctx.Err())
		}
	})
	return err
}

// Stats is a snapshot of an instance's counters.
type Stats struct {
	// Posts is the number of posts stored (an idempotent resend is not
	// counted again).
	Posts uint64
	// TimelineInserts is the number of post IDs pushed into home
	// timelines: the write amplification is TimelineInserts / Posts.
	TimelineInserts uint64
	// FanOutJobs counts the jobs done, Pushed those that pushed, and
	// DeadLetters those that kept failing.
	FanOutJobs, Pushed, DeadLetters uint64
	// PulledReads is the number of followees' post lists merged at read
	// time.
	PulledReads uint64
	// PageHits counts home pages served from the page cache.
	PageHits uint64
	// StaleReads counts home pages served from the last good page while
	// Redis was unavailable.
	StaleReads uint64
	// RedisErrors counts failed or refused Redis calls.
	RedisErrors uint64
	// Breaker is the state of the Redis circuit breaker.
	Breaker resilience.State
}

// Stats returns the instance's counters.
func (s *Service) Stats() Stats {
	m := s.metrics
	return Stats{Posts: m.posts.Load(), TimelineInserts: m.inserts.Load(), FanOutJobs: m.jobs.Load(), Pushed: m.pushed.Load(),
		DeadLetters: m.dead.Load(), PulledReads: m.pulled.Load(), PageHits: m.pageHits.Load(), StaleReads: m.stale.Load(), RedisErrors: m.redisErrors.Load(),
		Breaker: s.breaker.State()}
}

// redis runs fn through the breaker and the timeout. Its errors are
// client errors, or wrap ErrUnavailable when Redis cannot be reached.
func (s *Service) redis(ctx context.Context, fn func(ctx context.Context) error) error {
	_, err := s.pipe.Execute(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	var e *Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.metrics.redisErrors.Add(1)
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// isPushOnly reports whether the strategy never pulls; isPullOnly whether
// it never pushes.
func (s *Service) isPushOnly() bool { return s.cfg.Strategy.Threshold == math.MaxInt64 }
func (s *Service) isPullOnly() bool { return s.cfg.Strategy.Threshold == 0 }

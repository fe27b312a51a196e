// Package service is the URL shortener of the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Real-World System
// Designs → 1. URL Shortener Service", composed from the library's
// packages: codes stored durably in bbolt shards behind a [shard.Router],
// read through cache-aside ([cache.Aside]) over an in-process L1 and a
// Redis L2 guarded by a circuit breaker and a timeout ([resilience]),
// creation rate-limited per client IP or per API key with the IETF
// RateLimit headers ([ratelimit.Middleware]), clicks counted off the
// request path by write-behind ([cache.WriteBehind]) and metrics in the
// Prometheus format. Every response carries the secure defaults of
// "Security & Reliability → Security Considerations" ([httpsec]): security
// headers, a strict CORS policy, a body limit and a request id;
// administrative actions (delete, backup) need a token with the admin role
// and are audit-logged.
// Several instances share one [Storage] and sit behind an [lb.Proxy] (see
// the shortener command).
//
// A redirect served from L1 does no I/O besides its own HTTP exchange. A
// delete evicts the code from every instance's L1: in process through a
// [Bus], across processes through Redis pub/sub.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/cache/rediscache"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpmetrics"
	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/ratelimit"
	"github.com/sysdesign-go/sysdesign/ratelimit/redislimit"
	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/shard"
)

// AdminRole is the role a token needs for administrative requests.
const AdminRole = "admin"

// ErrInvalidConfig wraps every bad [Config] value.
var ErrInvalidConfig = errors.New("service: invalid configuration")

// Record is what a short code maps to.
type Record struct {
	URL string `json:"url"`
	// Created and Expires are Unix seconds; Expires 0 means never.
	Created int64 `json:"created"`
	Expires int64 `json:"expires,omitempty"`
}

// Config configures a [Service]. The zero value is a working service:
// counter-based codes, 302 redirects, no Redis.
type Config struct {
	// BaseURL is the public base of short URLs, e.g. "https://sho.rt":
	// codes are appended to it, and long URLs on its host are refused as
	// self-references. Default "": the address the client used, that is
	// X-Forwarded-Proto and X-Forwarded-Host from a trusted proxy (see
	// TrustedProxies), else "http://" + the request's Host.
	BaseURL string
	// Strategy is [StrategyCounter] (default) or [StrategyHash].
	Strategy string
	// HashLength is the length of hash-based codes, 6 to 11. Default 7.
	HashLength int
	// BlockSize is how many counter IDs an instance reserves at once.
	// Default 1000.
	BlockSize uint64
	// Redirect is the redirect status: 302 (default) keeps every click
	// visible to analytics and lets a link be changed or deleted; 301 is
	// cached by browsers for good, saving requests but hiding repeat
	// clicks and outliving deletes. 307 and 308 are their method-keeping
	// twins.
	Redirect int
	// CacheSize is the L1 capacity in entries. Default 100,000.
	CacheSize int
	// CacheTTL is the lifetime of cached records in L1 and L2. Default 1h.
	// It bounds how long an instance that missed an invalidation (another
	// process, without Redis) serves a deleted code.
	CacheTTL time.Duration
	// NoCache turns the cache off (every redirect reads the store); for
	// load tests. Default false.
	NoCache bool
	// CreateLimit is the creation limit of each client IP or, with
	// APIKeys, of each API key. Default 10 per second with a burst of 20.
	CreateLimit ratelimit.Limit
	// APIKeys, if set, makes creation require an API key in X-API-Key
	// and limits each key (not each IP) to CreateLimit: it maps each key's
	// name, which is logged, to the secret key ([httpsec.APIKeyOptions]).
	// Default nil: anyone may create, limited per IP.
	APIKeys map[string]string
	// AllowedOrigins are the origins whose pages may call the API from a
	// browser ([httpsec.Options]). Default none: same-origin only.
	AllowedOrigins []string
	// TrustedProxies are the networks of the proxies in front of the
	// service (the load balancer's). Only from a peer in one of them are
	// X-Forwarded-For (the client IP, for rate limits), X-Forwarded-Host
	// and X-Forwarded-Proto (the public address, for short URLs) believed.
	// Default none.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes bounds request bodies. Default 8 KiB.
	MaxBodyBytes int64
	// MaxURLLength bounds long URLs. Default 2048 bytes.
	MaxURLLength int
	// ClickBatch and ClickInterval are the write-behind batch size and
	// longest wait of click counts. Defaults 500 and 1 s.
	ClickBatch    int
	ClickInterval time.Duration
	// Bus, if set, carries invalidations to the other instances of this
	// process on the same bus: a delete evicts the code from their L1
	// without Redis. [Start] sets one for its instances. Default nil.
	Bus *Bus
	// Redis, if set, is the L2 cache, the invalidation channel and the
	// global rate limit. Create it with ContextTimeoutEnabled: true so a
	// hung Redis is cut by RedisTimeout. Default nil: L1 and local limits
	// only.
	Redis redis.UniversalClient
	// RedisPrefix prefixes every Redis key and channel. Default
	// "shortener:".
	RedisPrefix string
	// Namespace keeps this deployment's Redis keys and channels apart from
	// those of other deployments on the same Redis: they are all under
	// RedisPrefix + Namespace + ":". Instances that share a store must
	// share a namespace; deployments that do not share one must not, or
	// one serves the other's cached links. 1 to 64 characters from A-Z,
	// a-z, 0-9, '.', '_' and '-'. Default: the storage's [Storage.ID], so
	// a new data directory never reads the links cached for an old one.
	Namespace string
	// RedisTimeout bounds each Redis call. Default 50 ms.
	RedisTimeout time.Duration
	// BreakerOpen is how long the Redis breaker stays open before a probe.
	// Default 5 s.
	BreakerOpen time.Duration
	// Tokens verifies the bearer tokens of administrative requests
	// (DELETE /api/v1/urls/{code}, GET /api/v1/admin/backup), which need
	// the role [AdminRole]; each is audit-logged to Logger. Default nil:
	// administrative requests are refused.
	Tokens *httpsec.Tokens
	// Logger receives operational messages and the audit log. Default:
	// discarded.
	Logger *slog.Logger
	// Now is the clock for creation and expiry. Default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() error {
	switch c.Strategy {
	case "":
		c.Strategy = StrategyCounter
	case StrategyCounter, StrategyHash:
	default:
		return fmt.Errorf("%w: strategy %q (want %q or %q)", ErrInvalidConfig, c.Strategy, StrategyCounter, StrategyHash)
	}
	if c.HashLength == 0 {
		c.HashLength = 7
	}
	if c.HashLength < 6 || c.HashLength > 11 {
		return fmt.Errorf("%w: hash length %d out of [6, 11]", ErrInvalidConfig, c.HashLength)
	}
	if c.BlockSize == 0 {
		c.BlockSize = 1000
	}
	switch c.Redirect {
	case 0:
		c.Redirect = http.StatusFound
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return fmt.Errorf("%w: redirect status %d (want 301, 302, 307 or 308)", ErrInvalidConfig, c.Redirect)
	}
	if c.CacheSize == 0 {
		c.CacheSize = 100_000
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = time.Hour
	}
	if c.CreateLimit == (ratelimit.Limit{}) {
		c.CreateLimit = ratelimit.Limit{Events: 10, Per: time.Second, Burst: 20}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 8 << 10
	}
	if c.MaxURLLength == 0 {
		c.MaxURLLength = 2048
	}
	if c.ClickBatch == 0 {
		c.ClickBatch = 500
	}
	if c.ClickInterval == 0 {
		c.ClickInterval = time.Second
	}
	if c.RedisPrefix == "" {
		c.RedisPrefix = "shortener:"
	}
	if c.Namespace != "" && !validNamespace(c.Namespace) {
		return fmt.Errorf("%w: namespace %q (want 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-')", ErrInvalidConfig, truncate(c.Namespace))
	}
	if c.RedisTimeout == 0 {
		c.RedisTimeout = 50 * time.Millisecond
	}
	if c.BreakerOpen == 0 {
		c.BreakerOpen = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			return fmt.Errorf("%w: trusted proxy prefix %v", ErrInvalidConfig, p)
		}
	}
	switch {
	case c.CacheSize < 0, c.CacheTTL < 0, c.MaxBodyBytes < 0, c.MaxURLLength < 0, c.ClickBatch < 0,
		c.ClickInterval < 0, c.RedisTimeout < 0, c.BreakerOpen < 0:
		return fmt.Errorf("%w: negative size or duration in %+v", ErrInvalidConfig, *c)
	}
	return nil
}

// redisKeys is the prefix of every Redis key and channel of this
// deployment.
func (c *Config) redisKeys() string { return c.RedisPrefix + c.Namespace + ":" }

// validNamespace reports whether s may be a [Config.Namespace].
func validNamespace(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Service is one shortener instance: an http.Handler over a shared
// [Storage]. It is safe for concurrent use. Create it with [New] and stop
// it with [Service.Close] after the HTTP server has stopped, so that the
// last clicks are flushed.
type Service struct {
	cfg     Config
	storage *Storage
	alloc   *blockAllocator
	cache   *urlCache
	aside   *cache.Aside[string, Record]
	clicks  *clicks
	limiter *dualLimiter
	handler http.Handler
	// deleteHandler is DELETE /api/v1/urls/{code}: the admin check, then
	// delete.
	deleteHandler http.Handler
	metrics       *metrics
	base          publicAddr // from cfg.BaseURL; zero when unset
}

// New returns a service over storage.
func New(ctx context.Context, storage *Storage, cfg Config) (*Service, error) {
	if storage == nil {
		return nil, fmt.Errorf("%w: nil storage", ErrInvalidConfig)
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Namespace == "" {
		cfg.Namespace = storage.ID()
	}
	s := &Service{cfg: cfg, storage: storage}
	if cfg.BaseURL != "" {
		var err error
		if s.base, err = parseBaseURL(cfg.BaseURL); err != nil {
			return nil, err
		}
	}
	s.alloc = &blockAllocator{size: cfg.BlockSize, reserve: func(ctx context.Context, n uint64) (uint64, error) {
		return storage.Reserve(ctx, "meta:next-id", n)
	}}
	var err error
	if s.cache, err = newURLCache(ctx, cfg); err != nil {
		return nil, err
	}
	if cfg.Bus != nil {
		s.cache.bus = cfg.Bus
		cfg.Bus.join(s.cache)
	}
	if s.aside, err = cache.NewAside[string, Record](s.cache, cache.AsideOptions{TTL: cfg.CacheTTL, Jitter: 0.1}); err != nil {
		_ = s.cache.close(context.Background())
		return nil, err
	}
	if s.clicks, err = newClicks(storage, cfg.ClickBatch, cache.WriteBehindOptions{
		Interval: cfg.ClickInterval, QueueSize: 100_000,
		OnFlush: func(n int, err error) {
			if err != nil {
				cfg.Logger.Warn("click flush failed; will retry", "clicks", n, "err", err)
			}
		},
	}); err != nil {
		_ = s.cache.close(context.Background())
		return nil, err
	}
	s.metrics = newMetrics(s)
	if s.limiter, err = newLimiter(cfg, s.cache); err != nil {
		_ = s.Close(ctx)
		return nil, err
	}
	if s.handler, err = s.routes(); err != nil {
		_ = s.Close(ctx)
		return nil, err
	}
	return s, nil
}

func newURLCache(ctx context.Context, cfg Config) (*urlCache, error) {
	l1, err := cache.NewMemory(cfg.CacheSize, cache.MemoryOptions[string, Record]{DefaultTTL: cfg.CacheTTL, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	c := &urlCache{l1: l1, l1TTL: cfg.CacheTTL}
	if cfg.Redis == nil {
		return c, nil
	}
	trip, err := resilience.ConsecutiveFailures(3)
	if err != nil {
		return nil, err
	}
	if c.cb, err = resilience.NewCircuitBreaker[l2Result](resilience.BreakerOptions{
		Name: "redis", Timeout: cfg.BreakerOpen, Trip: trip,
		OnStateChange: func(sc resilience.StateChange) {
			cfg.Logger.Warn("redis breaker", "from", sc.From.String(), "to", sc.To.String())
		},
	}); err != nil {
		return nil, err
	}
	tm, err := resilience.NewTimeout[l2Result](resilience.TimeoutOptions{Name: "redis", Timeout: cfg.RedisTimeout})
	if err != nil {
		return nil, err
	}
	if c.pipe, err = resilience.NewPipeline[l2Result](c.cb, tm); err != nil {
		return nil, err
	}
	if c.l2, err = rediscache.New[Record](cfg.Redis, rediscache.Options{Prefix: cfg.redisKeys() + "url:", DefaultTTL: cfg.CacheTTL, Timeout: cfg.RedisTimeout}); err != nil {
		return nil, err
	}
	c.ml, err = rediscache.NewMultiLevel(ctx, l1, c.l2, rediscache.MultiLevelOptions{Channel: cfg.redisKeys() + "invalidate", L1TTL: cfg.CacheTTL})
	if err != nil {
		// Redis is down at start: run on L1 and the store, as when the
		// breaker is open, rather than refuse to start.
		cfg.Logger.Warn("redis unavailable at start; running without L2", "err", err)
		c.l2, c.ml, c.pipe, c.cb = nil, nil, nil, nil
	}
	return c, nil
}

// Handler returns the service's HTTP handler.
func (s *Service) Handler() http.Handler { return s.handler }

// Close flushes the click counts and stops the cache's subscriber. Call it
// after the HTTP server has stopped taking requests. It does not close the
// storage or the Redis client.
func (s *Service) Close(ctx context.Context) error {
	return errors.Join(s.clicks.close(ctx), s.cache.close(ctx))
}

// Stats is a snapshot of a service's counters.
type Stats struct {
	Cache  cache.AsideStats
	L1Hits uint64
	L2Hits uint64
	// L2Errors counts failed or short-circuited Redis calls.
	L2Errors uint64
	// Breaker is the Redis breaker's state; BreakerRejected counts the
	// Redis calls it short-circuited (included in L2Errors).
	Breaker         resilience.State
	BreakerRejected uint64
	Clicks          cache.WriteBehindStats
	Router          shard.RouterStats
	RateLimited     uint64
	RedisEnabled    bool
	// PeerEvictions counts the L1 entries dropped because another
	// instance on the same [Bus] deleted the code.
	PeerEvictions uint64
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	return Stats{
		Cache: s.aside.Stats(), L1Hits: s.cache.l1Hits.Load(), L2Hits: s.cache.l2Hits.Load(),
		L2Errors: s.cache.l2Errors.Load(), Breaker: s.cache.breakerState(), BreakerRejected: s.cache.rejected(), Clicks: s.clicks.stats(),
		Router: s.storage.Router().Stats(), RateLimited: s.metrics.limitedN.Load(), RedisEnabled: s.cache.l2 != nil,
		PeerEvictions: s.cache.busEvictions.Load(),
	}
}

// dualLimiter enforces the per-instance limit and, with Redis, the same
// limit shared by every instance. Redis is skipped while the cache
// breaker is open, and fails open otherwise: an unreachable Redis never
// blocks creation, and the local limit still bounds each client.
type dualLimiter struct {
	local  *ratelimit.Keyed
	global *redislimit.Limiter // nil without Redis
	cache  *urlCache
}

func (d *dualLimiter) Decide(ctx context.Context, key string, n int) (ratelimit.Decision, error) {
	dec, err := d.local.Decide(ctx, key, n)
	if err != nil || !dec.Allowed || d.global == nil || d.cache.breakerState() == resilience.StateOpen {
		return dec, err
	}
	return d.global.Decide(ctx, key, n)
}

func (d *dualLimiter) Limits() []ratelimit.Limit { return d.local.Limits() }

func newLimiter(cfg Config, c *urlCache) (*dualLimiter, error) {
	local, err := ratelimit.NewKeyed(ratelimit.AlgGCRA, ratelimit.KeyedOptions{Now: cfg.Now}, cfg.CreateLimit)
	if err != nil {
		return nil, fmt.Errorf("%w: create limit: %w", ErrInvalidConfig, err)
	}
	d := &dualLimiter{local: local, cache: c}
	if cfg.Redis != nil && c.l2 != nil {
		d.global, err = redislimit.New(cfg.Redis, ratelimit.AlgGCRA, redislimit.Options{Prefix: cfg.redisKeys() + "rl:", Timeout: cfg.RedisTimeout}, cfg.CreateLimit)
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (s *Service) routes() (http.Handler, error) {
	ip, err := ratelimit.NewClientIP(ratelimit.ClientIPOptions{TrustedProxies: s.cfg.TrustedProxies})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	sec, err := httpsec.NewMiddleware(httpsec.Options{
		TrustedProxies: s.cfg.TrustedProxies, AllowedOrigins: s.cfg.AllowedOrigins, MaxBodyBytes: s.cfg.MaxBodyBytes,
		AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	limiter := countDenials{s.limiter, s.metrics}
	var create http.Handler = http.HandlerFunc(s.create)
	if s.cfg.APIKeys != nil {
		keys, err := httpsec.NewAPIKeys(httpsec.APIKeyOptions{Keys: s.cfg.APIKeys, Limiter: limiter, Policy: "create"})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		create = keys.Handler(create)
	} else {
		limit, err := ratelimit.NewMiddleware(ratelimit.MiddlewareOptions{Limiter: limiter, Key: ip.Key, Policy: "create"})
		if err != nil {
			return nil, err
		}
		create = limit.Handler(create)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/urls", methods(create, http.MethodPost))
	mux.Handle("/api/v1/urls/{code}", methods(http.HandlerFunc(s.info), http.MethodGet, http.MethodDelete))
	mux.Handle("/api/v1/urls/{code}/stats", methods(http.HandlerFunc(s.stats), http.MethodGet))
	mux.Handle("/api/v1/admin/backup", methods(s.admin(http.HandlerFunc(s.backup)), http.MethodGet))
	mux.Handle("/healthz", methods(http.HandlerFunc(s.health), http.MethodGet))
	mux.Handle("/metrics", methods(s.metrics.handler(), http.MethodGet))
	mux.Handle("/{code}", methods(http.HandlerFunc(s.redirect), http.MethodGet))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpsec.WriteProblem(w, &httpsec.Problem{Status: http.StatusNotFound, Code: "not_found", Detail: "no such resource"})
	})
	s.deleteHandler = s.admin(http.HandlerFunc(s.delete))
	return s.metrics.instrument(drainBody(sec.Handler(httpmetrics.Routes(mux)))), nil
}

// admin returns h behind the admin role's token check, or a refusal when
// no Tokens are configured.
func (s *Service) admin(h http.Handler) http.Handler {
	if s.cfg.Tokens == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpsec.WriteProblem(w, &httpsec.Problem{Status: http.StatusForbidden, Code: "forbidden", Detail: "administrative requests are off on this service (no token verifier configured)"})
		})
	}
	return s.cfg.Tokens.Require(AdminRole, h)
}

// countDenials counts the creations the limiter refuses.
type countDenials struct {
	*dualLimiter
	m *metrics
}

func (c countDenials) Decide(ctx context.Context, key string, n int) (ratelimit.Decision, error) {
	d, err := c.dualLimiter.Decide(ctx, key, n)
	if err == nil && !d.Allowed {
		c.m.deny()
	}
	return d, err
}

// methods answers other methods with a JSON 405 (ServeMux's own is plain
// text). HEAD is allowed wherever GET is.
func methods(h http.Handler, allowed ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range allowed {
			if r.Method == m || r.Method == http.MethodHead && m == http.MethodGet {
				h.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		httpsec.WriteProblem(w, &httpsec.Problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Detail: fmt.Sprintf("method %s is not allowed here; use %s", r.Method, strings.Join(allowed, " or "))})
	})
}

// createRequest is the body of POST /api/v1/urls.
type createRequest struct {
	URL string `json:"url"`
	// Alias is a custom code; optional.
	Alias string `json:"alias,omitempty"`
	// ExpiresIn is the lifetime in seconds; 0 = never.
	ExpiresIn int64 `json:"expires_in,omitempty"`
	// Idempotent returns the existing code of a live link to the same URL
	// (or the same alias and URL) instead of creating another.
	Idempotent bool `json:"idempotent,omitempty"`
}

// URLResponse describes a short URL.
type URLResponse struct {
	Code      string     `json:"code"`
	ShortURL  string     `json:"short_url"`
	URL       string     `json:"url"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Existing is true when an idempotent request found the link.
	Existing bool `json:"existing,omitempty"`
}

// StatsResponse is the body of GET /api/v1/urls/{code}/stats.
type StatsResponse struct {
	Code   string `json:"code"`
	Clicks uint64 `json:"clicks"`
}

const maxExpiresIn = 10 * 365 * 24 * 3600

func (s *Service) decodeCreate(r *http.Request) (createRequest, *httpsec.Problem) {
	var req createRequest
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return req, &httpsec.Problem{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Detail: fmt.Sprintf("content type %q; send application/json (curl: -H 'Content-Type: application/json')", truncate(ct))}
		}
	}
	// The body was read, up to MaxBodyBytes, by the httpsec middleware.
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		return req, badRequest("empty_body", "", "request body is empty; send a JSON object")
	case err != nil:
		return req, badRequest("invalid_json", "", "malformed JSON: "+err.Error())
	}
	if req.ExpiresIn < 0 || req.ExpiresIn > maxExpiresIn {
		return req, badRequest("invalid_expiry", "expires_in", fmt.Sprintf("expires_in %d must be between 0 and %d seconds", req.ExpiresIn, maxExpiresIn))
	}
	var apiErr *httpsec.Problem
	if req.URL, apiErr = validateURL(req.URL, s.cfg.MaxURLLength, s.selfHosts(r)); apiErr != nil {
		return req, apiErr
	}
	if req.Alias != "" {
		if apiErr := validateAlias(req.Alias); apiErr != nil {
			return req, apiErr
		}
	}
	return req, nil
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) {
	req, apiErr := s.decodeCreate(r)
	if apiErr != nil {
		httpsec.WriteProblem(w, apiErr)
		return
	}
	ctx := r.Context()
	now := s.cfg.Now()
	rec := Record{URL: req.URL, Created: now.Unix()}
	if req.ExpiresIn > 0 {
		rec.Expires = now.Unix() + req.ExpiresIn
	}
	code, existing, err := s.store(ctx, req, rec, now)
	if err != nil {
		var apiErr *httpsec.Problem
		if errors.As(err, &apiErr) {
			httpsec.WriteProblem(w, apiErr)
			return
		}
		s.cfg.Logger.Error("create failed", "err", err)
		httpsec.WriteProblem(w, &httpsec.Problem{Status: http.StatusServiceUnavailable, Code: "storage_unavailable", Detail: "the link could not be stored; retry later"})
		return
	}
	if existing != nil {
		rec = *existing
	} else {
		s.metrics.created.Inc()
		// New links are usually clicked soon after they are shared: warm
		// L1 and L2 (write-around would make the first click a miss). No
		// invalidation is sent: no instance can hold a code that did not
		// exist (a deleted alias was evicted everywhere when deleted).
		if !s.cfg.NoCache {
			_ = s.cache.Set(ctx, code, rec, s.cfg.CacheTTL)
		}
	}
	status := http.StatusCreated
	if existing != nil {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/api/v1/urls/"+code)
	writeJSON(w, status, s.describe(r, code, rec, existing != nil))
}

func (s *Service) describe(r *http.Request, code string, rec Record, existing bool) URLResponse {
	out := URLResponse{Code: code, ShortURL: s.public(r).base + "/" + code, URL: rec.URL,
		CreatedAt: time.Unix(rec.Created, 0).UTC(), Existing: existing}
	if rec.Expires != 0 {
		t := time.Unix(rec.Expires, 0).UTC()
		out.ExpiresAt = &t
	}
	return out
}

const maxAttempts = 8

// store writes rec under a new code (or the alias) and returns the code;
// for idempotent requests that find a live link to the same URL it returns
// that link's code and record instead.
func (s *Service) store(ctx context.Context, req createRequest, rec Record, now time.Time) (string, *Record, error) {
	val, err := json.Marshal(rec)
	if err != nil {
		return "", nil, err
	}
	live := func(b []byte) (*Record, bool) {
		var old Record
		if json.Unmarshal(b, &old) != nil || old.URL != rec.URL || old.Expires != 0 && old.Expires <= now.Unix() {
			return nil, false
		}
		return &old, true
	}
	if req.Alias != "" {
		old, created, err := s.storage.Create(ctx, "u:"+req.Alias, val)
		switch {
		case err != nil:
			return "", nil, err
		case created:
			s.aside.Forget(req.Alias)
			return req.Alias, nil, nil
		}
		if o, ok := live(old); ok && req.Idempotent {
			return req.Alias, o, nil
		}
		return "", nil, &httpsec.Problem{Status: http.StatusConflict, Code: "alias_taken", Field: "alias", Detail: fmt.Sprintf("alias %q is taken", req.Alias)}
	}
	index := "i:" + hashCode(rec.URL, 0, 11)
	if req.Idempotent {
		if code, err := s.storage.Router().Get(ctx, index); err == nil {
			if b, err := s.storage.Router().Get(ctx, "u:"+string(code)); err == nil {
				if o, ok := live(b); ok {
					return string(code), o, nil
				}
			}
		}
	}
	for attempt := range maxAttempts {
		var code string
		if s.cfg.Strategy == StrategyHash {
			code = hashCode(rec.URL, attempt, s.cfg.HashLength)
		} else {
			id, err := s.alloc.Next(ctx)
			if err != nil {
				return "", nil, err
			}
			code = counterCode(id)
		}
		old, created, err := s.storage.Create(ctx, "u:"+code, val)
		if err != nil {
			return "", nil, err
		}
		if !created {
			// The hash strategy maps a URL to the same code: a live link to
			// the same URL is that link. Anything else is a collision (or,
			// for counters, a custom alias that took the code).
			if o, ok := live(old); ok && s.cfg.Strategy == StrategyHash {
				return code, o, nil
			}
			s.metrics.collisions.Inc()
			continue
		}
		s.aside.Forget(code)
		if req.Idempotent {
			if err := s.storage.Router().Put(ctx, index, []byte(code)); err != nil {
				s.cfg.Logger.Warn("idempotency index not written", "code", code, "err", err)
			}
		}
		return code, nil, nil
	}
	return "", nil, &httpsec.Problem{Status: http.StatusServiceUnavailable, Code: "code_space_exhausted", Detail: fmt.Sprintf("no free code after %d attempts; retry", maxAttempts)}
}

// lookup returns code's record through the cache.
func (s *Service) lookup(ctx context.Context, code string) (Record, error) {
	load := func(ctx context.Context, code string) (Record, error) {
		b, err := s.storage.Router().Get(ctx, "u:"+code)
		if errors.Is(err, shard.ErrNotFound) {
			return Record{}, fmt.Errorf("code %q: %w", code, cache.ErrNotFound)
		}
		if err != nil {
			return Record{}, err
		}
		var rec Record
		return rec, json.Unmarshal(b, &rec)
	}
	if s.cfg.NoCache {
		return load(ctx, code)
	}
	return s.aside.Get(ctx, code, load)
}

var (
	errNotFound = &httpsec.Problem{Status: http.StatusNotFound, Code: "not_found", Detail: "no such short code"}
	errExpired  = &httpsec.Problem{Status: http.StatusGone, Code: "expired", Detail: "this short link has expired"}
)

// resolve returns code's live record or the problem to answer.
func (s *Service) resolve(ctx context.Context, code string) (Record, *httpsec.Problem) {
	if !validCode(code) {
		return Record{}, errNotFound
	}
	rec, err := s.lookup(ctx, code)
	switch {
	case errors.Is(err, cache.ErrNotFound):
		return rec, errNotFound
	case err != nil:
		s.cfg.Logger.Error("lookup failed", "code", code, "err", err)
		return rec, &httpsec.Problem{Status: http.StatusServiceUnavailable, Code: "storage_unavailable", Detail: "the link could not be read; retry later"}
	case rec.Expires != 0 && rec.Expires <= s.cfg.Now().Unix():
		return rec, errExpired
	}
	return rec, nil
}

func (s *Service) redirect(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	rec, apiErr := s.resolve(r.Context(), code)
	if apiErr != nil {
		httpsec.WriteProblem(w, apiErr)
		return
	}
	if r.Method == http.MethodGet {
		if err := s.clicks.click(r.Context(), code); err != nil {
			s.cfg.Logger.Warn("click not counted", "code", code, "err", err)
		}
	}
	w.Header().Set("Referrer-Policy", "no-referrer")
	if s.cfg.Redirect == http.StatusFound || s.cfg.Redirect == http.StatusTemporaryRedirect {
		w.Header().Set("Cache-Control", "private, no-cache")
	}
	// rec.URL was validated on creation; nothing from this request goes
	// into Location.
	w.Header().Set("Location", rec.URL)
	w.WriteHeader(s.cfg.Redirect)
}

func (s *Service) info(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	if r.Method == http.MethodDelete {
		s.deleteHandler.ServeHTTP(w, r)
		return
	}
	rec, apiErr := s.resolve(r.Context(), code)
	if apiErr != nil {
		httpsec.WriteProblem(w, apiErr)
		return
	}
	writeJSON(w, http.StatusOK, s.describe(r, code, rec, false))
}

// delete removes a code; the admin check ran before it.
func (s *Service) delete(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	if !validCode(code) {
		httpsec.Audit(s.cfg.Logger, r, "delete", slog.String("code", truncate(code)), slog.String("outcome", "not_found"))
		httpsec.WriteProblem(w, errNotFound)
		return
	}
	if err := s.storage.Router().Delete(r.Context(), "u:"+code); err != nil {
		httpsec.Audit(s.cfg.Logger, r, "delete", slog.String("code", code), slog.String("outcome", "failed"), slog.Any("err", err))
		httpsec.WriteProblem(w, &httpsec.Problem{Status: http.StatusServiceUnavailable, Code: "storage_unavailable", Detail: "delete failed; retry"})
		return
	}
	httpsec.Audit(s.cfg.Logger, r, "delete", slog.String("code", code), slog.String("outcome", "deleted"))
	// Every instance's L1 drops the code: in this process through the bus,
	// in other processes through the Redis invalidation channel.
	if err := s.cache.Delete(r.Context(), code); err != nil {
		s.cfg.Logger.Warn("invalidation not published; other instances serve the link until their L1 TTL ends", "code", code, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) stats(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	if _, apiErr := s.resolve(r.Context(), code); apiErr != nil && apiErr != errExpired {
		httpsec.WriteProblem(w, apiErr)
		return
	}
	n, err := s.storage.Count(r.Context(), "c:"+code)
	if err != nil {
		httpsec.WriteProblem(w, &httpsec.Problem{Status: http.StatusServiceUnavailable, Code: "storage_unavailable", Detail: "stats unavailable; retry"})
		return
	}
	// Clicks counted here but still in the write-behind queue are added,
	// so a client sees its own clicks at once.
	writeJSON(w, http.StatusOK, StatsResponse{Code: code, Clicks: n + s.clicks.pending(code)})
}

func (s *Service) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"status": "ok", "redis_breaker": s.cache.breakerState().String(),
		"clicks_queued": strconv.Itoa(s.clicks.stats().Queued),
	})
}

// backup streams an online backup of the storage ([Storage.Backup]); the
// admin check ran before it.
func (s *Service) backup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="shortener-backup.tar"`)
	w.Header().Set("Cache-Control", "no-store")
	// A backup outlives the server's write timeout of ordinary requests.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	n, err := s.storage.Backup(r.Context(), w)
	if err != nil {
		// The status is sent: the client sees a cut stream, which a
		// restore refuses.
		httpsec.Audit(s.cfg.Logger, r, "backup", slog.Int64("bytes", n), slog.String("outcome", "failed"), slog.Any("err", err))
		panic(http.ErrAbortHandler)
	}
	httpsec.Audit(s.cfg.Logger, r, "backup", slog.Int64("bytes", n), slog.String("outcome", "written"))
}

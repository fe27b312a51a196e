// Package service is the chat application of the guide System Design
// Round — Principal Engineer Interview Preparation, "Real-World System
// Designs → 2. Chat Application", as a gateway built from this library's
// packages. Each key consideration of the guide has its part:
//
//   - Real-time communication: clients hold a WebSocket (GET /api/v1/ws)
//     or, where WebSockets cannot pass, a Server-Sent Events stream
//     (GET /api/v1/events) and send with POST /api/v1/messages and
//     /api/v1/acks. Several gateways share one Redis; presence (which
//     gateway holds which user, with a TTL renewed by the gateway's
//     heartbeat) routes live messages to the user's gateway over Redis
//     pub/sub.
//   - Message delivery: one Lua script assigns each conversation's
//     sequence numbers and appends to the conversation's Stream, so order
//     is total within a conversation. Clients acknowledge cumulatively per
//     conversation; a gateway resends what stays unacknowledged
//     ([Config.RedeliverAfter]): at-least-once delivery. In exactly-once
//     mode ([Config.Delivery]) the script also remembers each client
//     message ID, so a message resent after a lost reply is stored and
//     shown once; in at-least-once mode it is stored again.
//   - Offline support: a message is copied into each member's durable
//     inbox (a Stream) before the sender hears it is stored; a client that
//     connects is sent everything past its acknowledged sequence, and
//     pages older history with GET /api/v1/conversations/{conv}/messages.
//   - Group chats: groups of up to [Config.FanOutLimit] members are fanned
//     out on write (one inbox copy per member); larger ones are read from
//     the group's own log at sync time and broadcast live once, on a
//     channel of the group.
//   - Media sharing: a content-addressed blob store on local disk
//     ([NewMedia]); messages carry the blob's reference.
//   - Privacy: the service stores and forwards message bodies as opaque
//     strings, so clients encrypt end to end (the client package seals
//     with NaCl box under keys published through PUT /api/v1/keys).
//
// The library inside: per-user and per-connection limits
// ([ratelimit.Keyed]), a circuit breaker and a timeout around Redis
// ([resilience]), membership cached in process ([cache.Memory]), an
// [lb.Proxy] in front of several gateways ([Start]) that places each user
// on a gateway with [lb.Maglev] (the shard package's Maglev table), health
// checks and draining, and Prometheus metrics on /metrics.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/examples/internal/blob"
	"github.com/sysdesign-go/sysdesign/ratelimit"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// ErrInvalidConfig is wrapped by [New] and [Start] errors for bad
// configuration.
var ErrInvalidConfig = errors.New("chat: invalid configuration")

// Delivery modes of [Config.Delivery].
const (
	ExactlyOnce = "exactly-once"
	AtLeastOnce = "at-least-once"
)

// Config configures a gateway. Redis and Authenticate are required; every
// other zero field has the default its doc names.
type Config struct {
	// Redis carries live messages between gateways (pub/sub) and, unless
	// Shards is set, holds every durable state. Required.
	Redis redis.UniversalClient
	// Shards, when set, hold the durable state instead: each conversation
	// (its sequence, log, de-duplication and members) and each user (inbox,
	// acknowledgements, groups, presence, key) is placed on one of them by
	// a consistent-hash ring on its ID (shard.NewRing over shards named
	// "0", "1", … in this order, keys "c:<conversation>" and "u:<user>"),
	// so the state grows across Redis servers that are not a Cluster and a
	// shard added later moves about 1/(n+1) of them. A conversation's
	// scripts touch one shard; fan-out writes one pipeline per shard. Every
	// gateway must be given the same shards in the same order. Default:
	// Redis alone.
	Shards []redis.UniversalClient
	// Prefix starts every Redis key and channel, so deployments (and
	// tests) sharing a Redis stay apart. Default "chat:".
	Prefix string
	// Gateway names this gateway in presence and its pub/sub channel; it
	// must be unique among the gateways sharing the Redis. Default a
	// random ID.
	Gateway string
	// Authenticate maps a request to its user ID, or fails (the request
	// is answered 401). Required: pass [Tokens.User], or an identity
	// from your own authentication.
	Authenticate func(*http.Request) (string, error)
	// Delivery is ExactlyOnce (default: client message IDs are
	// de-duplicated for DedupTTL) or AtLeastOnce (a resent message is
	// stored again).
	Delivery string
	// DedupTTL is how long a client message ID is remembered. Default
	// 24 h.
	DedupTTL time.Duration
	// FanOutLimit is the largest group fanned out on write; larger groups
	// are fanned out at read time. Default 64.
	FanOutLimit int
	// RedeliverAfter is how long a sent message may stay unacknowledged
	// before the gateway sends it again. Default 2 s.
	RedeliverAfter time.Duration
	// PresenceTTL is how long a user's presence lasts without a renewal;
	// the gateway renews it every PresenceTTL/3 while the user is
	// connected. Default 15 s.
	PresenceTTL time.Duration
	// MaxFrame bounds a WebSocket message or request body in bytes;
	// a larger frame closes the connection with 1009 (message too big).
	// Default 64 KiB.
	MaxFrame int64
	// MaxBody bounds a message body in bytes. Default 16 KiB, or MaxFrame
	// if less.
	MaxBody int
	// UserLimit and ConnLimit bound the messages a user (over every
	// connection and POST) and one connection may send. Defaults 50/s
	// with a burst of 100, and 20/s with a burst of 40.
	UserLimit, ConnLimit ratelimit.Limit
	// RedisTimeout bounds every Redis call. Default 1 s.
	RedisTimeout time.Duration
	// BreakerOpen is how long the Redis breaker stays open before a
	// probe. Default 1 s.
	BreakerOpen time.Duration
	// Media stores uploads; nil means uploads are off (404).
	Media *blob.Store
	// MembershipTTL is how long a group's members are cached in process;
	// a member added through another gateway is seen here after at most
	// this long. Default 2 s.
	MembershipTTL time.Duration
	// OutboundQueue is the number of frames a connection may have waiting
	// to be written; a live message that finds it full is left to
	// redelivery. Default 32.
	OutboundQueue int
	// Logger receives the service's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock of message timestamps and presence. Default
	// time.Now.
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
		c.Prefix = "chat:"
	}
	if c.Gateway == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.Gateway = hex.EncodeToString(b[:])
	}
	if !idRE.MatchString(c.Gateway) {
		return fmt.Errorf("%w: gateway %q (want 1 to 64 of A-Z a-z 0-9 _ -)", ErrInvalidConfig, c.Gateway)
	}
	switch c.Delivery {
	case "":
		c.Delivery = ExactlyOnce
	case ExactlyOnce, AtLeastOnce:
	default:
		return fmt.Errorf("%w: delivery %q (want %s or %s)", ErrInvalidConfig, c.Delivery, ExactlyOnce, AtLeastOnce)
	}
	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"DedupTTL", &c.DedupTTL, 24 * time.Hour}, {"RedeliverAfter", &c.RedeliverAfter, 2 * time.Second},
		{"PresenceTTL", &c.PresenceTTL, 15 * time.Second}, {"RedisTimeout", &c.RedisTimeout, time.Second},
		{"BreakerOpen", &c.BreakerOpen, time.Second}, {"MembershipTTL", &c.MembershipTTL, 2 * time.Second},
	}
	for _, d := range durations {
		if *d.d < 0 {
			return fmt.Errorf("%w: %s %v is negative", ErrInvalidConfig, d.name, *d.d)
		}
		if *d.d == 0 {
			*d.d = d.def
		}
	}
	if c.MaxFrame < 0 {
		return fmt.Errorf("%w: MaxFrame %d is negative", ErrInvalidConfig, c.MaxFrame)
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = 64 << 10
	}
	ints := []struct {
		name string
		n    *int
		def  int
	}{{"FanOutLimit", &c.FanOutLimit, 64}, {"MaxBody", &c.MaxBody, int(min(16<<10, c.MaxFrame))}, {"OutboundQueue", &c.OutboundQueue, 32}}
	for _, n := range ints {
		if *n.n < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrInvalidConfig, n.name, *n.n)
		}
		if *n.n == 0 {
			*n.n = n.def
		}
	}
	if int64(c.MaxBody) > c.MaxFrame {
		return fmt.Errorf("%w: MaxBody %d exceeds MaxFrame %d", ErrInvalidConfig, c.MaxBody, c.MaxFrame)
	}
	if c.UserLimit == (ratelimit.Limit{}) {
		c.UserLimit = ratelimit.Limit{Events: 50, Per: time.Second, Burst: 100}
	}
	if c.ConnLimit == (ratelimit.Limit{}) {
		c.ConnLimit = ratelimit.Limit{Events: 20, Per: time.Second, Burst: 40}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// idRE is the shape of user, group, gateway and client message IDs.
var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Service is one gateway. It is safe for concurrent use. New starts its
// pub/sub subscriber and its sweeper (redelivery and presence); Close
// stops them.
type Service struct {
	cfg     Config
	st      *store
	pipe    *resilience.Pipeline[struct{}]
	breaker *resilience.CircuitBreaker[struct{}]
	userLim *ratelimit.Keyed
	connLim *ratelimit.Keyed
	groups  *cache.Memory[string, *group]
	metrics *metrics
	handler http.Handler
	pubsub  *redis.PubSub

	mu       sync.Mutex
	sessions map[string]map[*session]struct{} // by user
	subs     map[string]int                   // group channel → local members connected
	draining bool

	nextConn atomic.Uint64
	killed   atomic.Bool
	stop     chan struct{}
	wg       sync.WaitGroup // receive and sweep
	conns    sync.WaitGroup // connection handlers
}

// group is a cached group membership.
type group struct {
	members []string // sorted
}

func (g *group) has(u string) bool {
	i := sort.SearchStrings(g.members, u)
	return i < len(g.members) && g.members[i] == u
}

// New starts a gateway. ctx bounds start-up only.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	st, err := newStore(cfg.Redis, cfg.Shards, cfg.Prefix)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, st: st,
		sessions: map[string]map[*session]struct{}{}, subs: map[string]int{}, stop: make(chan struct{})}
	trip, err := resilience.ConsecutiveFailures(3)
	if err != nil {
		return nil, err
	}
	s.breaker, err = resilience.NewCircuitBreaker[struct{}](resilience.BreakerOptions{
		Name: "redis", Timeout: cfg.BreakerOpen, Trip: trip,
		IsExcluded: func(err error) bool { return errors.Is(err, redis.Nil) },
		OnStateChange: func(sc resilience.StateChange) {
			cfg.Logger.Warn("redis breaker", "gateway", cfg.Gateway, "from", sc.From.String(), "to", sc.To.String())
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
	if s.userLim, err = ratelimit.NewKeyed(ratelimit.AlgGCRA, ratelimit.KeyedOptions{}, cfg.UserLimit); err != nil {
		return nil, fmt.Errorf("%w: UserLimit: %w", ErrInvalidConfig, err)
	}
	if s.connLim, err = ratelimit.NewKeyed(ratelimit.AlgGCRA, ratelimit.KeyedOptions{}, cfg.ConnLimit); err != nil {
		return nil, fmt.Errorf("%w: ConnLimit: %w", ErrInvalidConfig, err)
	}
	if s.groups, err = cache.NewMemory(10_000, cache.MemoryOptions[string, *group]{DefaultTTL: cfg.MembershipTTL, Now: cfg.Now}); err != nil {
		return nil, err
	}
	s.metrics = newMetrics(s)
	// The gateway's channel is subscribed before New returns, so nothing
	// published to it after presence is recorded is missed.
	s.pubsub = cfg.Redis.Subscribe(ctx, s.st.gatewayChannel(cfg.Gateway))
	if _, err := s.pubsub.Receive(ctx); err != nil {
		cfg.Logger.Warn("redis unavailable at start; live delivery waits for it", "err", err)
	}
	s.handler = s.routes()
	s.wg.Add(2)
	go s.receive()
	go s.sweep()
	return s, nil
}

// Gateway returns the gateway's name.
func (s *Service) Gateway() string { return s.cfg.Gateway }

// Handler returns the gateway's HTTP handler.
func (s *Service) Handler() http.Handler { return s.handler }

// Drain makes the gateway leave without losing a message: /healthz turns
// 503 (so a balancer stops sending it users), and every connection is
// closed with 1012 (service restart), telling its client to reconnect
// through the balancer to another gateway, where it syncs from its last
// acknowledgement.
func (s *Service) Drain() {
	s.mu.Lock()
	s.draining = true
	var all []*session
	for _, ss := range s.sessions {
		for x := range ss {
			all = append(all, x)
		}
	}
	s.mu.Unlock()
	for _, x := range all {
		x.close(statusServiceRestart, "gateway draining")
	}
}

// kill drops every connection without a closing handshake and stops the
// gateway's goroutines, as a crash would; presence is left to expire.
func (s *Service) kill() {
	s.killed.Store(true)
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	for _, x := range s.allSessions() {
		x.close(0, "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Close(ctx)
}

// Close drains the gateway and stops its goroutines. Call it after the
// HTTP server has stopped accepting. It does not close the Redis client.
func (s *Service) Close(ctx context.Context) error {
	s.Drain()
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	err := s.pubsub.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return errors.Join(err, ctx.Err())
	}
	return err
}

// Stats is a snapshot of a gateway's counters.
type Stats struct {
	Connections                     int
	MessagesIn, MessagesOut         uint64
	Redeliveries, DuplicatesDropped uint64
	AcksReplayed, LiveDropped       uint64
	FannedOutWrite, FannedOutRead   uint64
	Breaker                         resilience.State
	RedisErrors                     uint64
	RateLimited                     uint64
}

// Stats returns the gateway's counters.
func (s *Service) Stats() Stats {
	m := s.metrics
	s.mu.Lock()
	n := 0
	for _, ss := range s.sessions {
		n += len(ss)
	}
	s.mu.Unlock()
	return Stats{
		Connections: n, MessagesIn: m.in.Load(), MessagesOut: m.out.Load(),
		Redeliveries: m.redelivered.Load(), DuplicatesDropped: m.dups.Load(), AcksReplayed: m.replayed.Load(),
		LiveDropped: m.liveDropped.Load(), FannedOutWrite: m.fanWrite.Load(), FannedOutRead: m.fanRead.Load(),
		Breaker: s.breaker.State(), RedisErrors: m.redisErrors.Load(), RateLimited: m.limited.Load(),
	}
}

// redis runs fn through the breaker and the timeout. Errors are
// errUnavailable when Redis cannot be reached.
func (s *Service) redis(ctx context.Context, fn func(ctx context.Context) error) error {
	_, err := s.pipe.Execute(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	if err != nil && !errors.Is(err, redis.Nil) && ctx.Err() == nil {
		s.metrics.redisErrors.Add(1)
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	return err
}

// conversation resolves c for user u: its members, and whether it is
// fanned out on write. Errors are client errors (unknown conversation,
// not a member) or errUnavailable.
func (s *Service) conversation(ctx context.Context, c, u string) (members []string, onWrite bool, err error) {
	kind, rest, _ := strings.Cut(c, ":")
	switch kind {
	case "d":
		a, b, ok := strings.Cut(rest, ":")
		if !ok || !idRE.MatchString(a) || !idRE.MatchString(b) || a >= b {
			return nil, false, clientErr("unknown_conversation", "conversation %q: a direct conversation is d:<user>:<user>, the two IDs in ascending order", c)
		}
		if u != a && u != b {
			return nil, false, clientErr("not_member", "user %q is not in conversation %q", u, c)
		}
		return []string{a, b}, true, nil
	case "g":
		if !idRE.MatchString(rest) {
			return nil, false, clientErr("unknown_conversation", "conversation %q: a group is g:<id>", c)
		}
		g, err := s.group(ctx, c)
		if err != nil {
			return nil, false, err
		}
		if g == nil {
			return nil, false, clientErr("unknown_conversation", "no group %q", c)
		}
		if !g.has(u) {
			return nil, false, clientErr("not_member", "user %q is not a member of %q", u, c)
		}
		return g.members, len(g.members) <= s.cfg.FanOutLimit, nil
	}
	return nil, false, clientErr("unknown_conversation", "conversation %q: want d:<user>:<user> or g:<group>", c)
}

// group returns group c's membership (nil: no such group), cached.
func (s *Service) group(ctx context.Context, c string) (*group, error) {
	if g, ok := s.groups.Get(c); ok {
		return g, nil
	}
	var members []string
	if err := s.redis(ctx, func(ctx context.Context) (err error) {
		members, err = s.st.members(ctx, c)
		return err
	}); err != nil {
		return nil, err
	}
	if len(members) == 0 {
		return nil, nil
	}
	sort.Strings(members)
	g := &group{members: members}
	_ = s.groups.Set(c, g)
	return g, nil
}

// DirectConversation returns the ID of the conversation between users a
// and b.
func DirectConversation(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return "d:" + a + ":" + b
}

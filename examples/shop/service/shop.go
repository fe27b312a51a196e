package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/examples/shop/catalog"
	"github.com/sysdesign-go/sysdesign/examples/shop/inventory"
	"github.com/sysdesign-go/sysdesign/examples/shop/order"
	"github.com/sysdesign-go/sysdesign/examples/shop/payment"
	"github.com/sysdesign-go/sysdesign/ratelimit"
	"github.com/sysdesign-go/sysdesign/shard"
)

// ErrInvalidConfig is wrapped by [Open] errors for a bad [Config].
var ErrInvalidConfig = errors.New("shop: invalid configuration")

// AdminRole is the token role that may change products and stock.
const AdminRole = "admin"

// Config configures [Open]. Redis, Stock, Tokens and CallbackSecret are
// required.
type Config struct {
	// DataDir holds the catalog and one order log per shard.
	DataDir string
	// Shards is the number of order shards. Default 4. Orders are placed
	// on shards by a consistent-hash ring of package shard.
	Shards int
	// Redis holds sessions, carts, the order list, recommendations, the
	// event streams and idempotency records.
	Redis redis.UniversalClient
	// Prefix is put before every Redis key of this deployment.
	Prefix string
	// Stock keeps inventory: [inventory.Raft], [inventory.Redis] or
	// [inventory.Reservations].
	Stock inventory.Store
	// Provider is the payment provider. Default: one without faults.
	Provider *payment.Provider
	// Payments configures the resilient payment client.
	Payments payment.ClientOptions
	// Tokens verifies users' bearer tokens (subject = user id; the admin
	// role for catalog changes).
	Tokens *httpsec.Tokens
	// CallbackSecret signs payment callbacks (HMAC-SHA256 in X-Signature).
	CallbackSecret []byte
	// CheckoutLimit limits each user's checkouts. Default 5 per second,
	// burst 10.
	CheckoutLimit ratelimit.Limit
	// CartTTL is how long an unused session or cart lives. Default 24 h.
	CartTTL time.Duration
	// GiveUp is how long a saga retries a step that fails for a reason
	// that is not final before compensating. Default 30 s.
	GiveUp time.Duration
	// RecoverEvery is the period of the sweep that resumes unfinished
	// orders. Default 500 ms.
	RecoverEvery time.Duration
	// Logger receives the shop's logs. Default: discarded.
	Logger *slog.Logger
}

// Shop is the shared backend of every instance: catalog, carts, order
// shards with their relays and consumers, payments. Open it once; each
// instance serves [Shop.Handler]. It is safe for concurrent use.
type Shop struct {
	cfg       Config
	catalog   *catalog.Catalog
	carts     *carts
	recs      *recommendations
	list      *order.OrderList
	shards    []*orderShard
	placement shard.Placement
	pay       *payment.Client
	limiter   *ratelimit.Keyed
	metrics   *metrics

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// orderShard is one shard of orders: its log on disk, the saga driving its
// orders, and the stream its relay publishes to.
type orderShard struct {
	log    *order.Log
	orch   *order.Orchestrator
	stream string
}

// Open opens the shop's stores and starts its background work: per shard a
// relay and two consumers (order list, recommendations), and a sweep that
// resumes unfinished orders — first of all those a crash left behind.
func Open(ctx context.Context, cfg Config) (*Shop, error) {
	switch {
	case cfg.Redis == nil || cfg.Stock == nil || cfg.Tokens == nil:
		return nil, fmt.Errorf("%w: Redis, Stock and Tokens are required", ErrInvalidConfig)
	case len(cfg.CallbackSecret) < 16:
		return nil, fmt.Errorf("%w: CallbackSecret of %d bytes (16 or more)", ErrInvalidConfig, len(cfg.CallbackSecret))
	case cfg.Shards < 0 || cfg.Shards > 256:
		return nil, fmt.Errorf("%w: %d shards (1 to 256)", ErrInvalidConfig, cfg.Shards)
	}
	if cfg.Shards == 0 {
		cfg.Shards = 4
	}
	if cfg.CheckoutLimit == (ratelimit.Limit{}) {
		cfg.CheckoutLimit = ratelimit.Limit{Events: 5, Per: time.Second, Burst: 10}
	}
	if cfg.CartTTL == 0 {
		cfg.CartTTL = 24 * time.Hour
	}
	if cfg.GiveUp == 0 {
		cfg.GiveUp = 30 * time.Second
	}
	if cfg.RecoverEvery == 0 {
		cfg.RecoverEvery = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Provider == nil {
		cfg.Provider = payment.NewProvider(payment.Faults{})
	}
	s := &Shop{cfg: cfg,
		carts: &carts{client: cfg.Redis, prefix: cfg.Prefix, ttl: cfg.CartTTL},
		recs:  &recommendations{client: cfg.Redis, prefix: cfg.Prefix + "recs:"},
		list:  order.NewOrderList(cfg.Redis, cfg.Prefix+"orders:"),
	}
	var err error
	if s.pay, err = payment.NewClient(cfg.Provider, cfg.Payments); err != nil {
		return nil, err
	}
	if s.limiter, err = ratelimit.NewKeyed(ratelimit.AlgGCRA, ratelimit.KeyedOptions{}, cfg.CheckoutLimit); err != nil {
		return nil, fmt.Errorf("%w: checkout limit: %w", ErrInvalidConfig, err)
	}
	if s.catalog, err = catalog.Open(filepath.Join(cfg.DataDir, "catalog.db")); err != nil {
		return nil, err
	}
	svc := order.Services{Stock: cfg.Stock, Payments: s.pay, Shipping: &warehouse{shipped: map[string]bool{}}}
	names := make([]string, cfg.Shards)
	for i := range cfg.Shards {
		names[i] = "orders-" + strconv.Itoa(i)
		l, err := order.OpenLog(filepath.Join(cfg.DataDir, names[i]+".db"))
		if err != nil {
			return nil, errors.Join(err, s.closeStores())
		}
		o := order.NewOrchestrator(l, svc)
		o.GiveUp = cfg.GiveUp
		s.shards = append(s.shards, &orderShard{log: l, orch: o, stream: cfg.Prefix + "events:" + names[i]})
	}
	if s.placement, err = shard.NewRing(shard.NodesNamed(names...), shard.RingOptions{}); err != nil {
		return nil, errors.Join(err, s.closeStores())
	}
	s.metrics = newMetrics(s)
	cfg.Provider.Notify = func(cb payment.Callback) { s.metrics.callbacks.WithLabelValues(cb.Status, "provider").Inc() }

	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, sh := range s.shards {
		relay := order.NewRelay(sh.log, cfg.Redis, sh.stream)
		s.wg.Go(func() { _ = relay.Run(bg, 100*time.Millisecond) })
		s.wg.Go(func() { _ = order.Consume(bg, cfg.Redis, sh.stream, "order-list", "shop", s.list.Apply) })
		s.wg.Go(func() { _ = order.Consume(bg, cfg.Redis, sh.stream, "recommendations", "shop", s.recs.apply) })
	}
	s.wg.Go(func() { s.recoverLoop(bg) })
	return s, nil
}

// recoverLoop resumes unfinished orders now and every RecoverEvery.
func (s *Shop) recoverLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RecoverEvery)
	defer t.Stop()
	for {
		for _, sh := range s.shards {
			ids, err := sh.log.Active()
			if err != nil {
				continue
			}
			for _, id := range ids {
				// Leave an order its checkout is still driving.
				if o, err := sh.log.Load(id); err != nil || time.Since(o.Updated) < 2*s.cfg.RecoverEvery {
					continue
				}
				if o, err := sh.orch.Run(ctx, id); err == nil {
					s.metrics.finished(o, "recovery")
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// shardOf returns the shard that owns order id.
func (s *Shop) shardOf(id string) *orderShard {
	return s.shards[s.placement.Locate(id)]
}

// Unfinished returns the ids of orders not yet final, over every shard.
func (s *Shop) Unfinished() ([]string, error) {
	var all []string
	for _, sh := range s.shards {
		ids, err := sh.log.Active()
		if err != nil {
			return nil, err
		}
		all = append(all, ids...)
	}
	return all, nil
}

// Order returns order id's state from its shard's log.
func (s *Shop) Order(id string) (order.Order, error) {
	return s.shardOf(id).log.Load(id)
}

// Catalog returns the product catalog.
func (s *Shop) Catalog() *catalog.Catalog { return s.catalog }

// Stock returns the inventory.
func (s *Shop) Stock() inventory.Store { return s.cfg.Stock }

// Close stops the background work and closes the stores.
func (s *Shop) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return s.closeStores()
}

func (s *Shop) closeStores() error {
	var errs []error
	for _, sh := range s.shards {
		errs = append(errs, sh.log.Close())
	}
	if s.catalog != nil {
		errs = append(errs, s.catalog.Close())
	}
	return errors.Join(errs...)
}

// warehouse is the in-process shipping service: a shipment per order,
// cancellable until it leaves.
type warehouse struct {
	mu      sync.Mutex
	shipped map[string]bool // order → shipped (true) or cancelled (false)
}

func (w *warehouse) Ship(_ context.Context, id string, _ []order.Line) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if done, ok := w.shipped[id]; ok && !done {
		return "", fmt.Errorf("%w: shipment of %q was cancelled", order.ErrDeclined, id)
	}
	w.shipped[id] = true
	return "sh-" + id, nil
}

func (w *warehouse) Cancel(_ context.Context, id string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.shipped[id] = false
	return nil
}

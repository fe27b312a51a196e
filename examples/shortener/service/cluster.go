package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/fleet"
	"github.com/sysdesign-go/sysdesign/lb"
)

// ClusterConfig configures [Start].
type ClusterConfig struct {
	// Addr is where clients connect: the single instance, or the load
	// balancer in front of several. Default "127.0.0.1:0" (a free port).
	Addr string
	// Instances is the number of service instances. Default 1: no load
	// balancer. With more, each instance listens on a free loopback port
	// behind an [lb.Proxy] using P2C least-request balancing with HTTP
	// health checks on /healthz.
	Instances int
	// DataDir and Shards locate the durable storage ([OpenStorage]).
	// Shards default 4.
	DataDir string
	Shards  int
	// StoreLatency is added to every store read
	// ([StorageOptions.ReadLatency]); for load tests that stand the
	// embedded store in for a networked database. Default 0.
	StoreLatency time.Duration
	// TLS, if set, makes the address clients connect to (the single
	// instance, or the balancer) serve HTTPS; the instances behind a
	// balancer stay on loopback HTTP and learn the scheme from its
	// X-Forwarded-Proto. Responses over TLS carry HSTS. Default nil: HTTP.
	TLS *tls.Config
	// Service configures every instance. With several instances the
	// loopback network is added to TrustedProxies, so that rate limits see
	// the client's address, not the balancer's, and short URLs the address
	// the client used (the balancer's X-Forwarded-Host); and, unless
	// Service.Bus is set, the instances share a new [Bus], so that a
	// delete on one evicts the code from the others' L1 with or without
	// Redis.
	Service Config
}

// Cluster is a running deployment: storage, instances and, with several
// instances, the load balancer. Close it to stop.
type Cluster struct {
	// Instances are the running services, in start order.
	Instances []*Service
	// InstanceURLs are their base URLs.
	InstanceURLs []string

	storage *Storage
	fleet   *fleet.Fleet
}

// Start opens the storage and starts the instances (and the balancer).
func Start(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Instances == 0 {
		cfg.Instances = 1
	}
	if cfg.Instances < 1 || cfg.Instances > 64 {
		return nil, fmt.Errorf("%w: %d instances (want 1 to 64)", ErrInvalidConfig, cfg.Instances)
	}
	storage, err := OpenStorage(cfg.DataDir, StorageOptions{Shards: cfg.Shards, ReadLatency: cfg.StoreLatency})
	if err != nil {
		return nil, err
	}
	c := &Cluster{storage: storage}
	fail := func(err error) (*Cluster, error) {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return nil, errors.Join(err, c.Close(sctx))
	}
	scfg := cfg.Service
	if scfg.Bus == nil {
		scfg.Bus = &Bus{}
	}
	if cfg.Instances > 1 {
		scfg.TrustedProxies = append(append([]netip.Prefix(nil), scfg.TrustedProxies...),
			netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	}
	handlers := make([]http.Handler, 0, cfg.Instances)
	for range cfg.Instances {
		svc, err := New(ctx, storage, scfg)
		if err != nil {
			return fail(err)
		}
		c.Instances = append(c.Instances, svc)
		handlers = append(handlers, svc.Handler())
	}
	c.fleet, err = fleet.Start(handlers, fleet.Options{
		Addr:   cfg.Addr,
		TLS:    cfg.TLS,
		Health: lb.HealthCheckOptions{Interval: time.Second, Timeout: 500 * time.Millisecond},
		Proxy:  lb.ProxyOptions{Timeout: 10 * time.Second},
	})
	if err != nil {
		return fail(err)
	}
	c.InstanceURLs = c.fleet.URLs
	return c, nil
}

// URL returns the address clients use: the balancer's, or the single
// instance's.
func (c *Cluster) URL() string { return c.fleet.URL() }

// Storage returns the shared storage.
func (c *Cluster) Storage() *Storage { return c.storage }

// Err returns a channel that receives a server's fatal error.
func (c *Cluster) Err() <-chan error { return c.fleet.Err() }

// Close stops gracefully: the balancer and instances stop accepting and
// finish in-flight requests, then every instance flushes its clicks, then
// the storage closes. ctx bounds the whole shutdown.
func (c *Cluster) Close(ctx context.Context) error {
	var errs []error
	if c.fleet != nil {
		errs = append(errs, c.fleet.Close(ctx))
	}
	for _, s := range c.Instances {
		errs = append(errs, s.Close(ctx))
	}
	errs = append(errs, c.storage.Close())
	return errors.Join(errs...)
}

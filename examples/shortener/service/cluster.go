package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

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

	url       string
	storage   *Storage
	servers   []*http.Server
	health    *lb.HealthChecker
	transport *http.Transport // the balancer's, to the instances
	done      chan error
}

// Start opens the storage and starts the instances (and the balancer).
func Start(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
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
	c := &Cluster{storage: storage, done: make(chan error, cfg.Instances+1)}
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
	var backends []lb.Backend
	for i := range cfg.Instances {
		svc, err := New(ctx, storage, scfg)
		if err != nil {
			return fail(err)
		}
		c.Instances = append(c.Instances, svc)
		addr := cfg.Addr
		if cfg.Instances > 1 {
			addr = "127.0.0.1:0"
		}
		u, err := c.serve(addr, svc.Handler())
		if err != nil {
			return fail(fmt.Errorf("instance %d: %w", i, err))
		}
		c.InstanceURLs = append(c.InstanceURLs, u)
		backends = append(backends, lb.Backend{Addr: u, Weight: 1})
	}
	if cfg.Instances == 1 {
		c.url = c.InstanceURLs[0]
		return c, nil
	}
	bal, err := lb.New(lb.P2C{}, backends, lb.Options{})
	if err != nil {
		return fail(err)
	}
	c.health, err = lb.NewHealthChecker(bal, lb.HealthCheckOptions{Path: "/healthz", Interval: time.Second, Timeout: 500 * time.Millisecond})
	if err != nil {
		return fail(err)
	}
	c.health.Start(context.Background())
	c.transport = http.DefaultTransport.(*http.Transport).Clone()
	c.transport.MaxIdleConnsPerHost = 256
	proxy, err := lb.NewProxy(bal, lb.ProxyOptions{Transport: c.transport, Timeout: 10 * time.Second})
	if err != nil {
		return fail(err)
	}
	if c.url, err = c.serve(cfg.Addr, proxy); err != nil {
		return fail(fmt.Errorf("load balancer: %w", err))
	}
	return c, nil
}

func (c *Cluster) serve(addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	c.servers = append(c.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.done <- err
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// URL returns the address clients use: the balancer's, or the single
// instance's.
func (c *Cluster) URL() string { return c.url }

// Storage returns the shared storage.
func (c *Cluster) Storage() *Storage { return c.storage }

// Err returns a channel that receives a server's fatal error.
func (c *Cluster) Err() <-chan error { return c.done }

// Close stops gracefully: the balancer and instances stop accepting and
// finish in-flight requests, then every instance flushes its clicks, then
// the storage closes. ctx bounds the whole shutdown.
func (c *Cluster) Close(ctx context.Context) error {
	var errs []error
	if c.health != nil {
		errs = append(errs, c.health.Close(ctx))
	}
	// The balancer (last server) first, so no request reaches a stopped
	// instance.
	for i := len(c.servers) - 1; i >= 0; i-- {
		errs = append(errs, c.servers[i].Shutdown(ctx))
	}
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	for _, s := range c.Instances {
		errs = append(errs, s.Close(ctx))
	}
	errs = append(errs, c.storage.Close())
	return errors.Join(errs...)
}

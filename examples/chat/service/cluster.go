package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/fleet"
	"github.com/sysdesign-go/sysdesign/lb"
)

// ClusterConfig configures [Start].
type ClusterConfig struct {
	// Addr is where clients connect: the single gateway, or the balancer
	// in front of several. Default "127.0.0.1:0" (a free port).
	Addr string
	// Gateways is the number of gateways. Default 1: no balancer. With
	// more, each listens on a free loopback port behind an [lb.Proxy]
	// that hashes the authenticated user onto a gateway with [lb.Maglev]
	// (so a user's connections and posts meet on one gateway), with HTTP
	// health checks on /healthz.
	Gateways int
	// Service configures every gateway; gateway i is named "<Gateway>i"
	// ("gw" when Gateway is empty).
	Service Config
}

// Cluster is a running deployment of gateways. Close it to stop.
type Cluster struct {
	// Gateways are the running gateways, in start order.
	Gateways []*Service
	// GatewayURLs are their base URLs.
	GatewayURLs []string

	fleet *fleet.Fleet
	mu    sync.Mutex
	down  map[int]bool
}

// Start starts the gateways (and the balancer).
func Start(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Gateways == 0 {
		cfg.Gateways = 1
	}
	if cfg.Gateways < 1 || cfg.Gateways > 64 {
		return nil, fmt.Errorf("%w: %d gateways (want 1 to 64)", ErrInvalidConfig, cfg.Gateways)
	}
	name := cfg.Service.Gateway
	if name == "" {
		name = "gw"
	}
	c := &Cluster{down: map[int]bool{}}
	closeGateways := func(err error) (*Cluster, error) {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range c.Gateways {
			err = errors.Join(err, s.Close(sctx))
		}
		return nil, err
	}
	handlers := make([]http.Handler, 0, cfg.Gateways)
	for i := range cfg.Gateways {
		scfg := cfg.Service
		scfg.Gateway = name + strconv.Itoa(i)
		svc, err := New(ctx, scfg)
		if err != nil {
			return closeGateways(err)
		}
		c.Gateways = append(c.Gateways, svc)
		handlers = append(handlers, svc.Handler())
	}
	auth := cfg.Service.Authenticate
	f, err := fleet.Start(handlers, fleet.Options{
		Addr:      cfg.Addr,
		Algorithm: lb.Maglev{},
		Health:    lb.HealthCheckOptions{Interval: 500 * time.Millisecond, Timeout: 250 * time.Millisecond, UnhealthyThreshold: 1, HealthyThreshold: 1},
		Proxy: lb.ProxyOptions{
			// Affinity by user: the balancer hashes the authenticated
			// user, so a user's WebSocket, SSE stream and posts meet on
			// one gateway.
			Request: func(r *http.Request) lb.Request {
				u, _ := auth(r)
				return lb.Request{Key: u}
			},
		},
		// No WriteTimeout: WebSockets and SSE streams are long-lived, and
		// their handlers clear the read deadline for themselves.
		Server: func() *http.Server {
			return &http.Server{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
				IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
		},
	})
	if err != nil {
		return closeGateways(err)
	}
	c.fleet, c.GatewayURLs = f, f.URLs
	return c, nil
}

// URL returns the address clients use: the balancer's, or the single
// gateway's.
func (c *Cluster) URL() string { return c.fleet.URL() }

// Err returns a channel that receives a server's fatal error.
func (c *Cluster) Err() <-chan error { return c.fleet.Err() }

// Drain takes gateway i out of the balancer's rotation and closes its
// connections with 1012, so its clients reconnect to the others and sync
// from their last acknowledgement: the gateway leaves and no message is
// lost.
func (c *Cluster) Drain(i int) error {
	if i < 0 || i >= len(c.Gateways) {
		return fmt.Errorf("%w: no gateway %d", ErrInvalidConfig, i)
	}
	if c.fleet.Balancer != nil {
		if err := c.fleet.Balancer.Drain(c.GatewayURLs[i]); err != nil {
			return err
		}
	}
	c.Gateways[i].Drain()
	return nil
}

// Kill stops gateway i as a crash would: its listener closes and its
// connections drop without a closing handshake, its presence is left to
// expire and the frames in its memory are lost. The balancer's health
// checks find it gone.
func (c *Cluster) Kill(i int) error {
	if i < 0 || i >= len(c.Gateways) {
		return fmt.Errorf("%w: no gateway %d", ErrInvalidConfig, i)
	}
	c.mu.Lock()
	if c.down[i] {
		c.mu.Unlock()
		return nil
	}
	c.down[i] = true
	c.mu.Unlock()
	_ = c.fleet.Kill(i)
	c.Gateways[i].kill()
	return nil
}

// Close stops gracefully: the balancer and the gateways stop accepting,
// the gateways close their connections with 1012, and their goroutines
// end. ctx bounds the whole shutdown.
func (c *Cluster) Close(ctx context.Context) error {
	errs := []error{c.fleet.Close(ctx)}
	for _, s := range c.Gateways {
		errs = append(errs, s.Close(ctx))
	}
	return errors.Join(errs...)
}

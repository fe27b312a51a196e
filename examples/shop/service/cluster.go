package service

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/fleet"
	"github.com/sysdesign-go/sysdesign/lb"
)

// Cluster is a running deployment: one [Shop] served by Instances HTTP
// servers and, with more than one, a load balancer of package lb in
// front (P2C least-request with health checks on /healthz). Close it to
// stop.
type Cluster struct {
	// InstanceURLs are the instances' base URLs.
	InstanceURLs []string

	fleet *fleet.Fleet
}

// Start serves shop on addr ("127.0.0.1:0" for a free port) with n
// instances.
func Start(shop *Shop, addr string, n int) (*Cluster, error) {
	if n < 1 || n > 64 {
		return nil, fmt.Errorf("%w: %d instances (1 to 64)", ErrInvalidConfig, n)
	}
	handlers := make([]http.Handler, n)
	for i := range handlers {
		handlers[i] = shop.Handler()
	}
	f, err := fleet.Start(handlers, fleet.Options{
		Addr:   addr,
		Health: lb.HealthCheckOptions{Interval: 200 * time.Millisecond, Timeout: 200 * time.Millisecond},
		Proxy:  lb.ProxyOptions{Timeout: 30 * time.Second},
		Server: func() *http.Server {
			return &http.Server{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
				WriteTimeout: 40 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
		},
	})
	if err != nil {
		return nil, err
	}
	return &Cluster{InstanceURLs: f.URLs, fleet: f}, nil
}

// URL returns where clients connect: the balancer, or the single instance.
func (c *Cluster) URL() string { return c.fleet.URL() }

// Err returns a channel that receives a server's fatal error.
func (c *Cluster) Err() <-chan error { return c.fleet.Err() }

// Kill stops instance i at once, dropping its connections — a crashed
// instance; the balancer's health checks take it out of rotation.
func (c *Cluster) Kill(i int) error {
	if i < 0 || i >= len(c.InstanceURLs) || len(c.InstanceURLs) == 1 {
		return fmt.Errorf("%w: no instance %d to kill", ErrInvalidConfig, i)
	}
	return c.fleet.Kill(i)
}

// Close stops the balancer, then the instances, gracefully within ctx. It
// does not close the shop.
func (c *Cluster) Close(ctx context.Context) error { return c.fleet.Close(ctx) }

// Package fleet serves a service's instances behind a load balancer of
// package lb, as the example services' -cluster N runs them (chat, shop,
// shortener): each instance on a free loopback port, a balancer with HTTP
// health checks in front on the clients' address, request IDs given at the
// balancer and carried to the instance, and a crash or a graceful stop of
// any part.
//
// Guide: "Load Balancing" (health checks, algorithms) and "Scalability
// Patterns → Horizontal scaling".
package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/lb"
)

// Options configure [Start].
type Options struct {
	// Addr is where clients connect: the single instance, or the balancer
	// in front of several. Default "127.0.0.1:0" (a free port).
	Addr string
	// TLS, if set, makes Addr serve HTTPS; instances behind a balancer
	// stay on loopback HTTP.
	TLS *tls.Config
	// Algorithm is the balancer's. Default lb.P2C{}.
	Algorithm lb.Algorithm
	// Health configures the health checks; Path defaults to "/healthz".
	Health lb.HealthCheckOptions
	// Proxy configures the balancer's proxy; its Transport is the
	// fleet's own.
	Proxy lb.ProxyOptions
	// Server returns a server with the timeouts the service needs; its
	// Handler is set by Start. Default: 5 s to read the header, 10 s the
	// request and to write the response, a minute idle, 16 KiB of headers.
	Server func() *http.Server
}

// Fleet is a set of running instances and, with more than one, their
// balancer. Close it to stop.
type Fleet struct {
	// URLs are the instances' base URLs, in the order of their handlers.
	URLs []string
	// Balancer is the balancer in front (nil with one instance).
	Balancer *lb.Balancer

	url       string
	server    func() *http.Server
	servers   []*http.Server // instances, then the balancer
	health    *lb.HealthChecker
	transport *http.Transport
	done      chan error
	mu        sync.Mutex
	killed    map[int]bool
}

// ErrInvalid is returned for a fleet that cannot run, such as one of no
// instances or a Kill of no instance.
var ErrInvalid = errors.New("fleet: invalid")

// maxInstances bounds a fleet.
const maxInstances = 64

// Start serves each handler as an instance and, with more than one, puts
// a balancer in front of them on o.Addr.
func Start(handlers []http.Handler, o Options) (*Fleet, error) {
	if n := len(handlers); n < 1 || n > maxInstances {
		return nil, fmt.Errorf("%w: %d instances (want 1 to %d)", ErrInvalid, n, maxInstances)
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Algorithm == nil {
		o.Algorithm = lb.P2C{}
	}
	if o.Health.Path == "" {
		o.Health.Path = "/healthz"
	}
	f := &Fleet{server: o.Server, done: make(chan error, len(handlers)+1), killed: map[int]bool{}}
	if f.server == nil {
		f.server = func() *http.Server {
			return &http.Server{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
				WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
		}
	}
	fail := func(err error) (*Fleet, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return nil, errors.Join(err, f.Close(ctx))
	}
	if len(handlers) == 1 {
		u, err := f.serve(o.Addr, o.TLS, handlers[0])
		if err != nil {
			return fail(err)
		}
		f.url, f.URLs = u, []string{u}
		return f, nil
	}
	backends := make([]lb.Backend, 0, len(handlers))
	for i, h := range handlers {
		u, err := f.serve("127.0.0.1:0", nil, h)
		if err != nil {
			return fail(fmt.Errorf("instance %d: %w", i, err))
		}
		f.URLs = append(f.URLs, u)
		backends = append(backends, lb.Backend{Addr: u, Weight: 1})
	}
	var err error
	if f.Balancer, err = lb.New(o.Algorithm, backends, lb.Options{}); err != nil {
		return fail(err)
	}
	if f.health, err = lb.NewHealthChecker(f.Balancer, o.Health); err != nil {
		return fail(err)
	}
	f.health.Start(context.Background())
	f.transport = http.DefaultTransport.(*http.Transport).Clone()
	f.transport.MaxIdleConnsPerHost = 256
	popts := o.Proxy
	popts.Transport = f.transport
	proxy, err := lb.NewProxy(f.Balancer, popts)
	if err != nil {
		return fail(err)
	}
	// The balancer gives every request an id (or checks the client's),
	// which the proxy forwards, so that an instance's logs and the
	// client's response name the same request.
	front := httpsec.WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxy.ServeHTTP(oneRequestID{w}, r)
	}))
	if f.url, err = f.serve(o.Addr, o.TLS, front); err != nil {
		return fail(fmt.Errorf("load balancer: %w", err))
	}
	return f, nil
}

func (f *Fleet) serve(addr string, tlsCfg *tls.Config, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := f.server()
	srv.Handler = h
	f.servers = append(f.servers, srv)
	scheme := "http://"
	serve := func() error { return srv.Serve(ln) }
	if tlsCfg != nil {
		srv.TLSConfig = tlsCfg.Clone()
		scheme = "https://"
		serve = func() error { return srv.ServeTLS(ln, "", "") }
	}
	go func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.done <- err
		}
	}()
	return scheme + ln.Addr().String(), nil
}

// oneRequestID keeps one X-Request-ID on the balancer's responses: the
// proxy adds the instance's, the same id, to the one the balancer set.
type oneRequestID struct{ http.ResponseWriter }

func (o oneRequestID) WriteHeader(status int) {
	h := o.Header()
	if v := h.Values(httpsec.RequestIDHeader); len(v) > 1 {
		h.Set(httpsec.RequestIDHeader, v[0])
	}
	o.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the server's writer (the
// proxy hijacks through it for upgrades).
func (o oneRequestID) Unwrap() http.ResponseWriter { return o.ResponseWriter }

// URL returns the address clients use: the balancer's, or the single
// instance's.
func (f *Fleet) URL() string { return f.url }

// Err returns a channel that receives a server's fatal error.
func (f *Fleet) Err() <-chan error { return f.done }

// Kill stops instance i as a crash would: its listener and connections
// close at once. The balancer's health checks find it gone.
func (f *Fleet) Kill(i int) error {
	if i < 0 || i >= len(f.URLs) {
		return fmt.Errorf("%w: no instance %d", ErrInvalid, i)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.killed[i] {
		return nil
	}
	f.killed[i] = true
	return f.servers[i].Close()
}

// Close stops gracefully within ctx: the health checks, then the balancer
// (so that no request reaches a stopped instance), then the instances,
// each finishing its requests in flight.
func (f *Fleet) Close(ctx context.Context) error {
	var errs []error
	if f.health != nil {
		errs = append(errs, f.health.Close(ctx))
	}
	for i := len(f.servers) - 1; i >= 0; i-- {
		errs = append(errs, f.servers[i].Shutdown(ctx))
	}
	if f.transport != nil {
		f.transport.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

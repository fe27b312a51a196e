// Command discovery runs service discovery on one machine, one role per
// process: a node of a three-node registry (the consensus package's Raft
// store with the registry's HTTP API), an instance of a small HTTP service
// that registers itself and heartbeats, a client that balances over the
// instances itself (client-side discovery) and a proxy that does it for
// its callers (server-side discovery). See README.md.
//
// Guide: "Microservices Architecture → Service Discovery" (service
// registry, client-side and server-side discovery, health checks, load
// balancing); "Distributed Systems → Distributed Consensus" (etcd and
// Consul: service discovery on a consensus store).
//
//	discovery registry -id n1 -raft 127.0.0.1:7101 -http 127.0.0.1:8501 -data /tmp/discovery-data/n1 -bootstrap
//	discovery instance -service hello -id a -http 127.0.0.1:9001 -registry 127.0.0.1:8501,127.0.0.1:8502,127.0.0.1:8503
//	discovery client -service hello -registry 127.0.0.1:8501,127.0.0.1:8502,127.0.0.1:8503 -requests 20
//	discovery proxy -service hello -http 127.0.0.1:8080 -registry 127.0.0.1:8501,127.0.0.1:8502,127.0.0.1:8503
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/consensus/registry"
	"github.com/sysdesign-go/sysdesign/examples/internal/raftserve"
	"github.com/sysdesign-go/sysdesign/lb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "discovery:", err)
		os.Exit(1)
	}
}

// config is one process's command line.
type config struct {
	role                            string
	id, raftAddr, httpAddr, dataDir string
	join, service, zone             string
	registry                        []string
	bootstrap                       bool
	ttl, interval                   time.Duration
	requests                        int
	tlsCert, tlsKey, tlsCA          string
	users, token                    string
}

func parse(args []string) (config, error) {
	var c config
	if len(args) == 0 {
		return c, errors.New("want a role: registry, instance, client or proxy")
	}
	c.role = args[0]
	fs := flag.NewFlagSet("discovery "+c.role, flag.ContinueOnError)
	var reg string
	switch c.role {
	case "registry":
		fs.StringVar(&c.id, "id", "", "node id, unique and stable (required)")
		fs.StringVar(&c.raftAddr, "raft", "127.0.0.1:7101", "Raft TCP address peers connect to")
		fs.StringVar(&c.dataDir, "data", "", "data directory (required)")
		fs.StringVar(&c.join, "join", "", "HTTP address of a member to join through")
		fs.BoolVar(&c.bootstrap, "bootstrap", false, "start a new cluster with this node")
		fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate of this node, for mutual TLS between nodes and HTTPS (with -tls-key and -tls-ca)")
		fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of -tls-cert")
		fs.StringVar(&c.users, "users", "", `JSON role table, [{"name","token","role":"read-only|read-write|admin","prefix"}]: access control (needs TLS)`)
	case "instance":
		fs.StringVar(&c.id, "id", "", "instance id (required)")
		fs.StringVar(&c.zone, "zone", "", "the instance's zone")
		fs.DurationVar(&c.ttl, "ttl", 2*time.Second, "registration TTL; heartbeats go every TTL/3")
	case "client":
		fs.IntVar(&c.requests, "requests", 20, "requests to send")
		fs.DurationVar(&c.interval, "interval", 50*time.Millisecond, "pause between requests")
	case "proxy":
	default:
		return c, fmt.Errorf("unknown role %q: want registry, instance, client or proxy", c.role)
	}
	if c.role != "client" {
		fs.StringVar(&c.httpAddr, "http", "", "HTTP address to serve on (required)")
	}
	if c.role != "registry" {
		fs.StringVar(&c.service, "service", "hello", "service name")
		fs.StringVar(&reg, "registry", "", "comma-separated HTTP addresses of the registry nodes (required)")
		fs.StringVar(&c.token, "token", "", "bearer token for the registry's API (needs -tls-ca)")
	}
	fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM certificate of the registry's CA: the registry speaks HTTPS")
	if err := fs.Parse(args[1:]); err != nil {
		return c, err
	}
	scheme := "http://"
	if c.tlsCA != "" {
		scheme = "https://"
	}
	for _, a := range strings.Split(reg, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.registry = append(c.registry, scheme+a)
		}
	}
	switch {
	case (c.role == "registry" || c.role == "instance") && c.id == "":
		return c, errors.New("-id is required")
	case c.role == "registry" && c.dataDir == "":
		return c, errors.New("-data is required")
	case c.role == "registry" && c.bootstrap && c.join != "":
		return c, errors.New("-bootstrap and -join are exclusive")
	case c.role != "client" && c.httpAddr == "":
		return c, errors.New("-http is required")
	case c.role != "registry" && len(c.registry) == 0:
		return c, errors.New("-registry is required")
	case c.role == "client" && c.requests <= 0:
		return c, fmt.Errorf("-requests %d: want > 0", c.requests)
	case c.users != "" && c.tlsCA == "":
		return c, errors.New("-users needs -tls-cert, -tls-key and -tls-ca: bearer tokens over plain HTTP can be read off the wire")
	case c.token != "" && c.tlsCA == "":
		return c, errors.New("-token needs -tls-ca: a bearer token over plain HTTP can be read off the wire")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	switch c.role {
	case "registry":
		s, err := startRegistry(ctx, c)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "registry %s: raft %s, http %s\n", c.id, s.Node.Addr(), s.HTTPAddr())
		<-ctx.Done()
		return s.Close()
	case "instance":
		return runInstance(ctx, c, stdout)
	case "client":
		return runClient(ctx, c, stdout)
	}
	return runProxy(ctx, c, stdout)
}

// registryClient returns a client of the registry for the other roles:
// over HTTPS trusting -tls-ca, with -token; and a function that closes its
// idle connections.
func registryClient(c config) (*registry.Client, func(), error) {
	tr := &http.Transport{}
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("-tls-ca %s holds no PEM certificate", c.tlsCA)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	}
	cl, err := registry.NewClient(c.registry, registry.ClientOptions{Token: c.token, HTTP: &http.Client{Transport: tr}})
	return cl, tr.CloseIdleConnections, err
}

// startRegistry starts registry node c: Raft, the store's API and the
// registry's on one HTTP server.
func startRegistry(ctx context.Context, c config) (*raftserve.Server, error) {
	return raftserve.Start(ctx, raftserve.Config{
		Node: consensus.Options{ID: c.id, Addr: c.raftAddr, DataDir: c.dataDir, Timing: consensus.LANTiming(),
			LeaseSweepInterval: 100 * time.Millisecond},
		HTTPAddr: c.httpAddr, Bootstrap: c.bootstrap, Join: c.join,
		TLSCert: c.tlsCert, TLSKey: c.tlsKey, TLSCA: c.tlsCA, Users: c.users,
		Handler: func(node *consensus.Node, client *http.Client, auth *consensus.Auth) (http.Handler, error) {
			store, err := consensus.NewHandler(node, consensus.HandlerOptions{Client: client, Auth: auth})
			if err != nil {
				return nil, err
			}
			reg, err := registry.New(node, registry.Options{})
			if err != nil {
				return nil, err
			}
			regAPI, err := registry.NewHandler(reg, registry.HandlerOptions{Client: client, Auth: auth})
			if err != nil {
				return nil, err
			}
			mux := http.NewServeMux()
			mux.Handle("/v1/services/", regAPI)
			mux.Handle("/v1/registrations/", regAPI)
			mux.Handle("/", store)
			return mux, nil
		},
	})
}

// runInstance serves "hello from <id>", registers and heartbeats until
// ctx ends, then deregisters. It registers again if its registration was
// lost (it was cut off from the registry for longer than its TTL).
func runInstance(ctx context.Context, c config, stdout io.Writer) error {
	cl, closeIdle, err := registryClient(c)
	if err != nil {
		return err
	}
	defer closeIdle()
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", c.id)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	inst := registry.Instance{Service: c.service, ID: c.id, Addr: ln.Addr().String(), Zone: c.zone}
	err = keepRegistered(ctx, cl, inst, c.ttl, func(r registry.Registration) {
		fmt.Fprintf(stdout, "instance %s/%s at %s registered (lease %d)\n", c.service, c.id, inst.Addr, r.Lease)
	})
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	derr := cl.Deregister(dctx, c.service, c.id)
	if errors.Is(derr, registry.ErrNotRegistered) {
		derr = nil
	}
	serr := srv.Shutdown(dctx)
	<-done
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return errors.Join(err, derr, serr)
}

// keepRegistered registers inst and heartbeats every TTL/3 until ctx
// ends.
func keepRegistered(ctx context.Context, cl *registry.Client, inst registry.Instance, ttl time.Duration, registered func(registry.Registration)) error {
	for {
		r, err := cl.Register(ctx, inst, ttl)
		if err != nil {
			return err
		}
		registered(r)
		tick := time.NewTicker(ttl / 3)
		for err == nil {
			select {
			case <-ctx.Done():
				tick.Stop()
				return ctx.Err()
			case <-tick.C:
			}
			hctx, cancel := context.WithTimeout(ctx, ttl/3)
			err = cl.Heartbeat(hctx, r.Lease)
			cancel()
			if err != nil && !errors.Is(err, registry.ErrNotRegistered) {
				err = nil // the registry is electing a leader: try at the next tick
			}
		}
		tick.Stop()
	}
}

// follower is a balancer that follows a discovery source through
// lb.Follow: instances that register enter it, those that leave are
// drained (no new requests, those in flight finish) and then removed.
type follower struct {
	b     *lb.Balancer // set before ready is closed
	ready chan struct{}
	done  chan error
}

// follow builds a balancer over the source's first non-empty set (a
// balancer starts from the backends known) and has lb.Follow keep it
// current until ctx ends.
func follow(ctx context.Context, src *registry.Source) *follower {
	f := &follower{ready: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		var first []lb.Backend
		wctx, found := context.WithCancel(ctx)
		err := src.Watch(wctx, func(bs []lb.Backend) {
			if len(bs) > 0 && first == nil {
				first = bs
				found()
			}
		})
		found()
		if first == nil {
			f.done <- err
			return
		}
		if f.b, err = lb.New(lb.P2C{}, first, lb.Options{DrainTimeout: drainTimeout}); err != nil {
			f.done <- err
			return
		}
		close(f.ready)
		f.done <- lb.Follow(ctx, f.b, src)
	}()
	return f
}

// drainTimeout bounds how long a balancer keeps an instance that left the
// registry while requests to it are in flight: the client's timeout.
const drainTimeout = 2 * time.Second

// balancer waits for the first set.
func (f *follower) balancer(ctx context.Context) (*lb.Balancer, error) {
	select {
	case <-f.ready:
		return f.b, nil
	case err := <-f.done:
		f.done <- err
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runClient sends requests, each to an instance its own balancer picks,
// and counts the answers per instance and the failures.
func runClient(ctx context.Context, c config, stdout io.Writer) error {
	cl, closeIdle, err := registryClient(c)
	if err != nil {
		return err
	}
	defer closeIdle()
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	f := follow(wctx, cl.Source(c.service))
	defer func() { stop(); <-f.done }()
	b, err := f.balancer(ctx)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	answers, failed := map[string]int{}, 0
	for i := range c.requests {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(c.interval):
			}
		}
		body, err := get(ctx, hc, b)
		if err != nil {
			failed++
			continue
		}
		answers[strings.TrimSpace(body)]++
	}
	fmt.Fprintf(stdout, "client: %d requests, %d failed, answers %v\n", c.requests, failed, answers)
	return nil
}

// get sends one request to the instance b picks and reports the result to
// b.
func get(ctx context.Context, hc *http.Client, b *lb.Balancer) (string, error) {
	p, err := b.Pick(ctx, lb.Request{})
	if err != nil {
		return "", err
	}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr()+"/", nil)
	if err != nil {
		p.Done(lb.Result{Err: err})
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		p.Done(lb.Result{Err: err, Latency: time.Since(start)})
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	p.Done(lb.Result{Err: err, Latency: time.Since(start)})
	return string(body), err
}

// runProxy serves an lb.Proxy over the service's instances.
func runProxy(ctx context.Context, c config, stdout io.Writer) error {
	cl, closeIdle, err := registryClient(c)
	if err != nil {
		return err
	}
	defer closeIdle()
	wctx, stop := context.WithCancel(ctx)
	f := follow(wctx, cl.Source(c.service))
	defer func() { stop(); <-f.done }()
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return err
	}
	ready := make(chan http.Handler, 1)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case h := <-ready:
			ready <- h
			h.ServeHTTP(w, r)
		default:
			http.Error(w, "no instance of "+c.service+" registered yet", http.StatusServiceUnavailable)
		}
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "proxy for %s on %s\n", c.service, ln.Addr())
	if b, err := f.balancer(ctx); err == nil {
		p, err := lb.NewProxy(b, lb.ProxyOptions{Timeout: 2 * time.Second})
		if err != nil {
			return err
		}
		ready <- p
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-done
	return err
}

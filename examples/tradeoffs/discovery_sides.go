package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/consensus/registry"
	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/lb"
)

var discoverySidesExperiment = lab.Experiment{
	Name:      "discovery-client-vs-server",
	Group:     "discovery",
	Title:     "client-side against server-side discovery: the extra hop, and a registry that is down",
	Section:   "Microservices Architecture → Service Discovery",
	Guide:     "Client-Side Discovery: Client queries service registry; Server-Side Discovery: Load balancer handles discovery",
	WallClock: true,
	Run:       runDiscoverySides,
}

type sidesResult struct {
	direct, proxied []time.Duration // sorted latencies with the registry up
	// With the registry down (every node stopped):
	downRequests                  int
	downDirectFail, downProxyFail int // before any instance dies
	deadDirectFail, deadProxyFail int // after one of the two instances died
	registerRefused               bool
	directWatchErr, proxyWatchErr error
}

func discoverySidesRun(ctx context.Context, env *lab.Env) (sidesResult, error) {
	var res sidesResult
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := discoveryCluster(ctx)
	if err != nil {
		return res, err
	}
	defer c.Close(context.Background())
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		return res, err
	}
	reg, err := registry.New(leader, registry.Options{})
	if err != nil {
		return res, err
	}
	var hellos []*helloServer
	defer func() {
		for _, h := range hellos {
			h.kill()
		}
	}()
	for i := range 2 {
		h, err := startHello(fmt.Sprint("i", i))
		if err != nil {
			return res, err
		}
		hellos = append(hellos, h)
		if _, err := reg.Register(ctx, registry.Instance{Service: "hello", ID: fmt.Sprint(i), Addr: h.addr}, time.Minute); err != nil {
			return res, err
		}
	}
	// Client-side: a balancer in the caller, fed by a follower's watch.
	// Server-side: a proxy with its own balancer, fed the same way.
	var nodes []*consensus.Node
	for _, n := range c.Nodes() {
		if n != leader {
			nodes = append(nodes, n)
		}
	}
	r1, _ := registry.New(nodes[0], registry.Options{})
	r2, _ := registry.New(nodes[1], registry.Options{})
	direct, directDone, err := followSource(ctx, r1.Source("hello"), 2, lb.Options{})
	if err != nil {
		return res, err
	}
	pb, proxyDone, err := followSource(ctx, r2.Source("hello"), 2, lb.Options{})
	if err != nil {
		return res, err
	}
	proxy, err := lb.NewProxy(pb, lb.ProxyOptions{Timeout: time.Second})
	if err != nil {
		return res, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	psrv := &http.Server{Handler: proxy, ReadHeaderTimeout: time.Second}
	pdone := make(chan error, 1)
	go func() { pdone <- psrv.Serve(ln) }()
	defer func() { _ = psrv.Close(); <-pdone }()
	proxyURL := "http://" + ln.Addr().String() + "/"
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Second}

	n := env.Scale(2000, 300)
	for i := range 2 * n { // interleaved, warm connections
		start := time.Now()
		if i%2 == 0 {
			if err := discoveryGet(ctx, hc, direct); err != nil {
				return res, err
			}
			res.direct = append(res.direct, time.Since(start))
		} else {
			if err := httpGet(ctx, hc, proxyURL); err != nil {
				return res, err
			}
			res.proxied = append(res.proxied, time.Since(start))
		}
	}
	res.direct, res.proxied = sortedCopy(res.direct), sortedCopy(res.proxied)

	// The registry goes away: every node stops.
	if err := c.Close(context.Background()); err != nil {
		return res, err
	}
	res.directWatchErr, res.proxyWatchErr = <-directDone, <-proxyDone
	_, err = reg.Register(ctx, registry.Instance{Service: "hello", ID: "new", Addr: "127.0.0.1:1"}, time.Minute)
	res.registerRefused = errors.Is(err, consensus.ErrClosed)
	res.downRequests = env.Scale(400, 100)
	sendBoth := func() (d, p int) {
		for range res.downRequests {
			if discoveryGet(ctx, hc, direct) != nil {
				d++
			}
			if httpGet(ctx, hc, proxyURL) != nil {
				p++
			}
		}
		return d, p
	}
	res.downDirectFail, res.downProxyFail = sendBoth()
	// An instance dies while nobody can tell the balancers.
	hellos[1].kill()
	hellos = hellos[:1]
	res.deadDirectFail, res.deadProxyFail = sendBoth()
	return res, nil
}

func runDiscoverySides(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	r, err := discoverySidesRun(ctx, env)
	if err != nil {
		return nil, err
	}
	d50, d99 := percentile(r.direct, 0.5), percentile(r.direct, 0.99)
	p50, p99 := percentile(r.proxied, 0.5), percentile(r.proxied, 0.99)
	lat := lab.NewTable("GET of a tiny response over loopback, interleaved, warm connections; registry up", "discovery", "requests", "p50", "p99", "hops")
	lat.AddRow("client-side (balancer in the caller)", len(r.direct), d50, d99, 1)
	lat.AddRow("server-side (lb.Proxy)", len(r.proxied), p50, p99, 2)
	down := lab.NewTable("every registry node stopped: both balancers keep the last set they saw", "phase", "requests each", "client-side failed", "server-side failed")
	down.AddRow("registry down, both instances alive", r.downRequests, r.downDirectFail, r.downProxyFail)
	down.AddRow("registry down, one instance killed", r.downRequests, r.deadDirectFail, r.deadProxyFail)
	verdict, reason := discoverySidesVerdict(r)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{lat, down}, Notes: []string{
		fmt.Sprintf("Client-side discovery queries the registry (here: watches it) from the caller and sends each request straight to an instance; server-side discovery puts a load balancer that follows the registry in front, at the price of a hop: the proxy adds %v at p50 and %v at p99 on loopback (a network hop adds its round trip on top).", p50-d50, p99-d99),
		fmt.Sprintf("With the registry unreachable (new registrations are refused: %v), neither side loses service: each balancer keeps the last set it saw (%d and %d failures of %d requests). What they lose is news: an instance that dies meanwhile stays in every set. The client-side balancer, which sends each request once, then fails %d of %d requests; the proxy retries an idempotent request on the other instance and fails %d — the retry hides the death at the cost of a slower answer.", r.registerRefused, r.downDirectFail, r.downProxyFail, r.downRequests, r.deadDirectFail, r.downRequests, r.deadProxyFail),
		"The cost of client-side discovery grows with the callers: every caller holds a watch on the registry (see discovery-watch-fanout) and needs the discovery logic in its own language; server-side discovery keeps one watch per proxy and the callers simple, and adds a component that must itself be highly available.",
		fmt.Sprintf("The watches ended when the registry stopped (client-side: %v; server-side: %v); the balancers were left as they were.", r.directWatchErr != nil, r.proxyWatchErr != nil),
	}}, nil
}

// discoverySidesVerdict judges "client-side discovery: client queries
// service registry; server-side discovery: load balancer handles
// discovery": both work, the server side costs a hop, and neither loses
// service while the registry is down and the instances live.
func discoverySidesVerdict(r sidesResult) (lab.Verdict, string) {
	d50, p50 := percentile(r.direct, 0.5), percentile(r.proxied, 0.5)
	numbers := fmt.Sprintf("the proxy's hop makes the median %v against %v client-side, and with the registry down and both instances alive %d and %d of %d requests failed",
		lab.Format(p50), lab.Format(d50), r.downDirectFail, r.downProxyFail, r.downRequests)
	return lab.Judge(p50 > d50 && r.downDirectFail+r.downProxyFail == 0,
		"Both sides discover, the server side at the price of a hop: "+numbers+".",
		lab.Nuance, "The two sides differ from the guide's picture: "+numbers+".")
}

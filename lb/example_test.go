package lb_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/sysdesign-go/sysdesign/lb"
)

// Guide: "Scalability Patterns → Load Balancing Strategies" (round robin).
// Round robin gives equal backends equal shares.
func ExampleRoundRobin() {
	b, err := lb.New(lb.RoundRobin{}, []lb.Backend{{Addr: "10.0.0.1:80", Weight: 1}, {Addr: "10.0.0.2:80", Weight: 1}, {Addr: "10.0.0.3:80", Weight: 1}}, lb.Options{})
	if err != nil {
		panic(err)
	}
	counts := map[string]int{}
	for range 6 {
		p, err := b.Pick(context.Background(), lb.Request{})
		if err != nil {
			panic(err)
		}
		counts[p.Addr()]++
		p.Done(lb.Result{Latency: 3 * time.Millisecond}) // always report the result
	}
	fmt.Println(counts)
	// Output: map[10.0.0.1:80:2 10.0.0.2:80:2 10.0.0.3:80:2]
}

// Guide: "Scalability Patterns → Load Balancing Strategies" (weighted round
// robin).
// Smooth weighted round robin interleaves the heavy backend with the
// others instead of sending it a burst.
func ExampleSmoothWeighted() {
	b, err := lb.New(lb.SmoothWeighted{}, []lb.Backend{{Addr: "a", Weight: 5}, {Addr: "b", Weight: 1}, {Addr: "c", Weight: 1}}, lb.Options{})
	if err != nil {
		panic(err)
	}
	var order []string
	for range 7 {
		p, _ := b.Pick(context.Background(), lb.Request{})
		order = append(order, p.Addr())
		p.Done(lb.Result{})
	}
	fmt.Println(strings.Join(order, " "))
	// Output: a a b a c a a
}

// Guide: "Scalability Patterns → Load Balancing Strategies" (least
// connections, by power of two choices).
// P2C sends the next request to the less loaded of two backends.
func ExampleP2C() {
	b, err := lb.New(lb.P2C{}, []lb.Backend{{Addr: "busy", Weight: 1}, {Addr: "idle", Weight: 1}}, lb.Options{})
	if err != nil {
		panic(err)
	}
	var held []lb.Pick
	for range 3 {
		p, _ := b.Pick(context.Background(), lb.Request{})
		held = append(held, p) // three requests in flight, spread 2:1
	}
	s := b.Stats()
	fmt.Println(s.Backends[0].InFlight+s.Backends[1].InFlight, "in flight, at most", max(s.Backends[0].InFlight, s.Backends[1].InFlight), "on one backend")
	for _, p := range held {
		p.Done(lb.Result{})
	}
	// Output: 3 in flight, at most 2 on one backend
}

// Guide: "Scalability Patterns → Load Balancing Strategies" (load-aware:
// response time and load).
// Peak EWMA stops sending to a backend as soon as it answers slowly.
func ExamplePeakEWMA() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := lb.New(lb.PeakEWMA{}, []lb.Backend{{Addr: "fast-1", Weight: 1}, {Addr: "fast-2", Weight: 1}, {Addr: "slow", Weight: 1}}, lb.Options{
		Now:  func() time.Time { return now },
		Rand: rand.New(rand.NewPCG(1, 2)),
	})
	if err != nil {
		panic(err)
	}
	latency := map[string]time.Duration{"fast-1": 10 * time.Millisecond, "fast-2": 10 * time.Millisecond, "slow": time.Second}
	counts := map[string]int{}
	for range 1000 {
		p, _ := b.Pick(context.Background(), lb.Request{})
		counts[p.Addr()]++
		now = now.Add(latency[p.Addr()])
		p.Done(lb.Result{Latency: latency[p.Addr()]})
	}
	fmt.Println("slow backend got fewer than 1%:", counts["slow"] < 10)
	// Output: slow backend got fewer than 1%: true
}

// Guide: "Scalability Patterns → Load Balancing Strategies" (IP hash:
// session affinity, by consistent hashing).
// Consistent hashing keeps a client on its backend, even when another
// backend leaves.
func ExampleRingHash() {
	backends := []lb.Backend{{Addr: "cache-1", Weight: 1}, {Addr: "cache-2", Weight: 1}, {Addr: "cache-3", Weight: 1}, {Addr: "cache-4", Weight: 1}}
	b, err := lb.New(lb.RingHash{}, backends, lb.Options{})
	if err != nil {
		panic(err)
	}
	pick := func(key string) string {
		p, _ := b.Pick(context.Background(), lb.Request{Key: key})
		defer p.Done(lb.Result{})
		return p.Addr()
	}
	home := pick("user-42")
	fmt.Println("same backend again:", pick("user-42") == home)
	for _, be := range backends {
		if be.Addr != home {
			_ = b.Remove(be.Addr) // another backend leaves
			break
		}
	}
	fmt.Println("same backend after a removal:", pick("user-42") == home)
	// Output:
	// same backend again: true
	// same backend after a removal: true
}

// Guide: "Scalability Patterns → Load Balancing Strategies" (geographic);
// "Fault Tolerance → Failover".
// Geo routes to the nearest healthy zone and spills over when it fails.
func ExampleGeo() {
	b, err := lb.New(lb.Geo{}, []lb.Backend{
		{Addr: "eu-1", Weight: 1, Zone: "eu", Coord: &lb.Coord{Lat: 50.1, Lon: 8.7}},
		{Addr: "us-1", Weight: 1, Zone: "us", Coord: &lb.Coord{Lat: 38.9, Lon: -77.4}},
		{Addr: "ap-1", Weight: 1, Zone: "ap", Coord: &lb.Coord{Lat: 35.7, Lon: 139.7}},
	}, lb.Options{DisablePanic: true})
	if err != nil {
		panic(err)
	}
	london := lb.Request{Coord: &lb.Coord{Lat: 51.5, Lon: -0.1}}
	p, _ := b.Pick(context.Background(), london)
	fmt.Println("London →", p.Addr())
	p.Done(lb.Result{})
	_ = b.SetHealthy("eu-1", false)
	p, _ = b.Pick(context.Background(), london)
	fmt.Println("London, eu down →", p.Addr())
	p.Done(lb.Result{})
	// Output:
	// London → eu-1
	// London, eu down → us-1
}

// Guide: "Scalability Patterns → Load Balancing Strategies" (health check
// integration, passive).
// Passive outlier detection ejects a backend after consecutive failures.
func ExampleOutlierOptions() {
	b, err := lb.New(lb.RoundRobin{}, []lb.Backend{{Addr: "a", Weight: 1}, {Addr: "b", Weight: 1}}, lb.Options{
		Outlier: &lb.OutlierOptions{ConsecutiveFailures: 3},
		OnEvent: func(e lb.Event) {
			if e.Kind == lb.EventStateChange {
				fmt.Printf("%s: %s → %s (%s)\n", e.Addr, e.From, e.To, e.Reason)
			}
		},
	})
	if err != nil {
		panic(err)
	}
	for range 6 {
		p, _ := b.Pick(context.Background(), lb.Request{})
		var err error
		if p.Addr() == "a" {
			err = errors.New("connection refused")
		}
		p.Done(lb.Result{Err: err, Latency: time.Millisecond})
	}
	// Output: a: healthy → ejected (3 consecutive failures)
}

// Guide: "Fault Tolerance → Failover" (load balancer failover).
// Failover retries a request on another backend.
func ExampleFailover() {
	b, _ := lb.New(lb.RoundRobin{}, []lb.Backend{{Addr: "down", Weight: 1}, {Addr: "up", Weight: 1}}, lb.Options{})
	f, err := lb.NewFailover(b, lb.FailoverOptions{Attempts: 2})
	if err != nil {
		panic(err)
	}
	for range 2 {
		err = f.Do(context.Background(), lb.Request{}, func(ctx context.Context, be lb.Backend) error {
			if be.Addr == "down" {
				return errors.New("connection refused")
			}
			fmt.Println("served by", be.Addr)
			return nil
		})
		if err != nil {
			panic(err)
		}
	}
	// Output:
	// served by up
	// served by up
}

// Guide: "Scalability Patterns → Load Balancing Strategies" (health check
// integration).
// The health checker takes a backend out of rotation when its probes fail.
func ExampleNewHealthChecker() {
	b, _ := lb.New(lb.RoundRobin{}, []lb.Backend{{Addr: "a", Weight: 1}, {Addr: "b", Weight: 1}}, lb.Options{})
	h, err := lb.NewHealthChecker(b, lb.HealthCheckOptions{
		UnhealthyThreshold: 1,
		Probe: func(ctx context.Context, be lb.Backend) error {
			if be.Addr == "b" {
				return errors.New("503 from /healthz")
			}
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	defer h.Close(context.Background())
	h.CheckNow(context.Background()) // Start(ctx) runs this every Interval
	for _, s := range b.Stats().Backends {
		fmt.Println(s.Addr, s.State)
	}
	// Output:
	// a healthy
	// b unhealthy
}

// Guide: "Scalability Patterns → Load Balancing Strategies".
// A reverse proxy in front of two real HTTP servers.
func ExampleNewProxy() {
	var backends []lb.Backend
	for _, name := range []string{"one", "two"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s", name)
		}))
		defer srv.Close()
		backends = append(backends, lb.Backend{Addr: srv.URL, Weight: 1})
	}
	b, err := lb.New(lb.RoundRobin{}, backends, lb.Options{})
	if err != nil {
		panic(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	proxy, err := lb.NewProxy(b, lb.ProxyOptions{Transport: tr})
	if err != nil {
		panic(err)
	}
	front := httptest.NewServer(proxy)
	defer front.Close()
	answers := map[string]bool{}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for range 4 {
		resp, err := client.Get(front.URL)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers[string(body)] = true
	}
	fmt.Println(len(answers), "backends answered")
	var served uint64
	for _, s := range b.Stats().Backends {
		served += s.Requests
	}
	fmt.Println(served, "requests counted")
	// Output:
	// 2 backends answered
	// 4 requests counted
}

// registry stands for a service registry: it reports the instances of a
// service, and publish changes them.
type registry struct {
	current []lb.Backend
	changes chan []lb.Backend
	applied chan struct{}
}

func (r *registry) Watch(ctx context.Context, update func([]lb.Backend)) error {
	update(r.current)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r.current = <-r.changes:
			update(r.current)
			r.applied <- struct{}{}
		}
	}
}

// publish changes the instances and returns once the watcher has them.
func (r *registry) publish(bs ...lb.Backend) {
	r.changes <- bs
	<-r.applied
}

// Guide: "Microservices Architecture → Service Discovery" (server-side
// discovery: the load balancer handles discovery).
// A Proxy whose balancer follows a service registry: instances that
// register join the rotation, one that leaves is drained and removed.
func ExampleFollow() {
	instance := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, name)
		}))
	}
	one, two := instance("one"), instance("two")
	defer one.Close()
	defer two.Close()
	reg := &registry{current: []lb.Backend{{Addr: one.URL, Weight: 1}}, changes: make(chan []lb.Backend), applied: make(chan struct{})}

	b, err := lb.New(lb.RoundRobin{}, reg.current, lb.Options{})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	following := make(chan error, 1)
	go func() { following <- lb.Follow(ctx, b, reg) }()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	proxy, err := lb.NewProxy(b, lb.ProxyOptions{Transport: tr})
	if err != nil {
		panic(err)
	}
	answers := func(n int) []string {
		var out []string
		for range n {
			w := httptest.NewRecorder()
			proxy.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			out = append(out, w.Body.String())
		}
		slices.Sort(out)
		return out
	}

	reg.publish(lb.Backend{Addr: one.URL, Weight: 1}, lb.Backend{Addr: two.URL, Weight: 1})
	fmt.Println("two instances:", answers(4))
	reg.publish(lb.Backend{Addr: two.URL, Weight: 1})
	fmt.Println("one left:", answers(2), len(b.Backends()), "backend")
	cancel()
	fmt.Println(<-following)
	// Output:
	// two instances: [one one two two]
	// one left: [two two] 1 backend
	// context canceled
}

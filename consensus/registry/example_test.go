package registry_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/consensus/registry"
	"github.com/sysdesign-go/sysdesign/lb"
)

// Guide: "Microservices Architecture → Service Discovery" (service
// registry).
// Two instances register under leases and heartbeat; one deregisters and
// leaves the listing (a balancer following the service: see Source).
func ExampleRegistry() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 1})
	if err != nil {
		panic(err)
	}
	defer c.Close(context.Background())
	reg, _ := registry.New(c.Leader(), registry.Options{})

	for i, addr := range []string{"10.0.0.1:8080", "10.0.0.2:8080"} {
		r, err := reg.Register(ctx, registry.Instance{Service: "api", ID: fmt.Sprint("api-", i), Addr: addr, Zone: "eu-1"}, 10*time.Second)
		if err != nil {
			panic(err)
		}
		_ = reg.Heartbeat(ctx, r.Lease) // an instance does this every few seconds
	}
	list := func() {
		insts, _, _ := reg.List(ctx, "api", consensus.Linearizable)
		for _, inst := range insts {
			fmt.Println(inst.ID, inst.Addr, inst.Zone, inst.Status)
		}
	}
	list()
	_ = reg.Deregister(ctx, "api", "api-1")
	list()
	// Output:
	// api-0 10.0.0.1:8080 eu-1 passing
	// api-1 10.0.0.2:8080 eu-1 passing
	// api-0 10.0.0.1:8080 eu-1 passing
}

// Guide: "Microservices Architecture → Service Discovery" (client-side
// discovery: a balancer fed by the registry inside the caller).
// lb.Follow keeps a balancer equal to the service's instances: an instance
// that deregisters is drained — no new requests, the one in flight
// finishes — and removed once it is idle.
func ExampleSource() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 1})
	if err != nil {
		panic(err)
	}
	defer c.Close(context.Background())
	reg, _ := registry.New(c.Leader(), registry.Options{})
	for i, addr := range []string{"10.0.0.1:8080", "10.0.0.2:8080"} {
		if _, err := reg.Register(ctx, registry.Instance{Service: "api", ID: fmt.Sprint("api-", i), Addr: addr}, 10*time.Second); err != nil {
			panic(err)
		}
	}

	// Build the balancer over a first listing, then follow the service.
	insts, _, err := reg.List(ctx, "api", consensus.Linearizable)
	if err != nil {
		panic(err)
	}
	events := make(chan lb.Event, 16)
	balancer, err := lb.New(lb.RoundRobin{}, registry.Backends(insts), lb.Options{OnEvent: func(e lb.Event) { events <- e }})
	if err != nil {
		panic(err)
	}
	fctx, stop := context.WithCancel(ctx)
	followed := make(chan error, 1)
	go func() { followed <- lb.Follow(fctx, balancer, reg.Source("api")) }()

	// A request to api-1 is in flight when api-1 deregisters.
	var inflight lb.Pick
	for inflight.Addr() != "10.0.0.2:8080" {
		if inflight, err = balancer.Pick(ctx, lb.Request{}); err != nil {
			panic(err)
		}
	}
	_ = reg.Deregister(ctx, "api", "api-1")
	e := <-events
	fmt.Println(e.Addr, e.From, "→", e.To)
	for range 3 {
		p, _ := balancer.Pick(ctx, lb.Request{})
		fmt.Println("new request to", p.Addr())
		p.Done(lb.Result{})
	}
	inflight.Done(lb.Result{}) // the request in flight finishes
	e = <-events
	fmt.Println(e.Addr, e.Kind)
	stop()
	fmt.Println(<-followed)
	// Output:
	// 10.0.0.2:8080 healthy → draining
	// new request to 10.0.0.1:8080
	// new request to 10.0.0.1:8080
	// new request to 10.0.0.1:8080
	// 10.0.0.2:8080 removed
	// context canceled
}

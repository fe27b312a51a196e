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
// registry, client-side discovery, load balancing).
// Two instances register; a balancer follows the service through its
// Source; when one instance is deregistered the balancer drops it.
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
	balancer, _ := lb.New(lb.RoundRobin{}, []lb.Backend{{Addr: "bootstrap:1", Weight: 1}}, lb.Options{})
	wctx, stop := context.WithCancel(ctx)
	changes, done := make(chan int), make(chan error)
	go func() {
		done <- reg.Source("api").Watch(wctx, func(bs []lb.Backend) {
			_ = balancer.Update(bs)
			select {
			case changes <- len(bs):
			case <-wctx.Done():
			}
		})
	}()
	fmt.Println("instances:", <-changes)
	_ = reg.Deregister(ctx, "api", "api-1")
	fmt.Println("instances:", <-changes)
	for _, b := range balancer.Backends() {
		fmt.Println("backend:", b.Addr, b.Zone)
	}
	stop()
	<-done
	// Output:
	// instances: 2
	// instances: 1
	// backend: 10.0.0.1:8080 eu-1
}

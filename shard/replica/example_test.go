package replica_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sysdesign-go/sysdesign/shard"
	"github.com/sysdesign-go/sysdesign/shard/replica"
)

// cluster starts five in-memory nodes on one in-process network and
// returns it with the ring that places keys on them.
func cluster() (*replica.Network, *shard.Ring) {
	ring, err := shard.NewRing(shard.NodesNamed("n1", "n2", "n3", "n4", "n5"), shard.RingOptions{})
	if err != nil {
		panic(err)
	}
	net := new(replica.Network)
	for _, n := range ring.Nodes() {
		node, err := replica.NewNode(replica.NodeConfig{Name: n.Name, Placement: ring, Transport: net.Endpoint(n.Name)})
		if err != nil {
			panic(err)
		}
		net.Register(n.Name, node)
	}
	return net, ring
}

// Guide: "Distributed Systems → CAP Theorem" (AP systems: available during
// partitions, may return stale data) and "Distributed Systems → Consistency
// Models". With two of a key's three replicas down, only requests at ONE
// are answered; QUORUM and ALL fail rather than pretend.
func ExampleCoordinator_levels() {
	net, ring := cluster()
	c, err := replica.NewCoordinator(replica.Config{Placement: ring, Transport: net.Endpoint("client"), N: 3})
	if err != nil {
		panic(err)
	}
	defer c.Close(context.Background())
	ctx := context.Background()

	var prefs []string
	for _, i := range ring.AppendN(nil, "user:42", 3) {
		prefs = append(prefs, ring.Nodes()[i].Name)
	}
	net.Crash(prefs[1])
	net.Crash(prefs[2])
	for _, lvl := range []replica.Level{replica.One, replica.Quorum, replica.All} {
		_, err := c.Put(ctx, "user:42", []byte("ada"), replica.Context{}, replica.Options{Level: lvl})
		fmt.Printf("write at %-6s available: %v\n", lvl, err == nil)
	}
	_, err = c.Get(ctx, "user:42", replica.Options{Level: replica.Quorum})
	fmt.Println(errors.Is(err, replica.ErrUnavailable))
	// Output:
	// write at ONE    available: true
	// write at QUORUM available: false
	// write at ALL    available: false
	// true
}

// Guide: "Distributed Systems → Consistency Models" (causal consistency:
// vector clocks). Two writes made from the same read are concurrent: a read
// returns both as siblings, and a write carrying that read's context
// resolves them.
func ExampleCoordinator_siblings() {
	net, ring := cluster()
	c, err := replica.NewCoordinator(replica.Config{Placement: ring, Transport: net.Endpoint("client")})
	if err != nil {
		panic(err)
	}
	defer c.Close(context.Background())
	ctx := context.Background()

	if _, err := c.Put(ctx, "cart:7", []byte("milk"), replica.Context{}, replica.Options{}); err != nil {
		panic(err)
	}
	read, _ := c.Get(ctx, "cart:7", replica.Options{})
	c.Put(ctx, "cart:7", []byte("milk,eggs"), read.Context, replica.Options{})
	c.Put(ctx, "cart:7", []byte("milk,bread"), read.Context, replica.Options{})

	both, _ := c.Get(ctx, "cart:7", replica.Options{})
	fmt.Printf("%d siblings\n", len(both.Values))
	c.Put(ctx, "cart:7", []byte("milk,eggs,bread"), both.Context, replica.Options{})
	merged, _ := c.Get(ctx, "cart:7", replica.Options{})
	fmt.Printf("%s\n", merged.Values)
	// Output:
	// 2 siblings
	// [milk,eggs,bread]
}

// Guide: "Distributed Systems → Consistency Models" (Read-Your-Writes,
// Monotonic Reads, Session Consistency). A session carried as a token from
// one coordinator to another: the second never answers with data older
// than what the session wrote, and a token signed with another key is
// refused.
func ExampleCoordinator_SessionToken() {
	net, ring := cluster()
	key := []byte("shared by the cluster's coordinators")
	a, _ := replica.NewCoordinator(replica.Config{Placement: ring, Transport: net.Endpoint("a"), SessionKey: key})
	b, _ := replica.NewCoordinator(replica.Config{Placement: ring, Transport: net.Endpoint("b"), SessionKey: key})
	defer a.Close(context.Background())
	defer b.Close(context.Background())
	ctx := context.Background()

	var s replica.Session
	if _, err := a.Put(ctx, "profile:9", []byte("bio v2"), replica.Context{}, replica.Options{Level: replica.One, Session: &s}); err != nil {
		panic(err)
	}
	token := a.SessionToken(&s)

	resumed, err := b.ResumeSession(token)
	if err != nil {
		panic(err)
	}
	got, err := b.Get(ctx, "profile:9", replica.Options{Level: replica.One, Session: resumed})
	fmt.Printf("%s %v\n", got.Values, err)

	_, err = b.ResumeSession(token + "A") // an altered signature
	fmt.Println(errors.Is(err, replica.ErrSessionToken))
	// Output:
	// [bio v2] <nil>
	// true
}

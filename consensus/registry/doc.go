// Package registry is a service registry on the Raft store of package
// consensus, from the guide System Design Round — Principal Engineer
// Interview Preparation, "Microservices Architecture → Service Discovery"
// (a service registry, health checks, client-side and server-side
// discovery, load balancing) and "Distributed Consensus" (etcd's "watch
// notifications … service discovery", Consul's "service discovery, health
// checking, key-value store").
//
// The lines a user writes first:
//
//	reg, err := registry.New(node, registry.Options{})
//	r, err := reg.Register(ctx, registry.Instance{Service: "api", ID: "a1", Addr: "10.0.0.1:8080"}, 10*time.Second)
//	err = reg.Heartbeat(ctx, r.Lease) // every few seconds, well within the TTL
//	err = lb.Follow(ctx, balancer, reg.Source("api")) // additions slow-start, removals drain
//
// # Pieces
//
//   - [Registry.Register] writes an [Instance] (service, id, address, zone,
//     weight, metadata) under a lease of its own ([consensus.Node.GrantLease]);
//     [Registry.Heartbeat] keeps the lease alive; [Registry.Deregister]
//     revokes it. An instance that stops heartbeating leaves every view
//     within its TTL plus the lease sweep's bound, even across a leader
//     change (see [consensus.Node.GrantLease]).
//   - [Registry.List] and [Registry.Watch]: a service's instances, and
//     every change to them, from any node of the cluster (a watch is
//     served by the node's own log, see [consensus.Watcher]).
//   - [Registry.Source]: one service as the discovery source a balancer
//     of package lb follows — client-side discovery is a balancer fed by
//     it inside the caller, server-side discovery an lb.Proxy fed by it.
//   - [Registry.HealthTarget]: the service's instances as the target of an
//     lb.HealthChecker run beside the leader, which marks failing instances
//     [Critical] (out of every source's set, still registered) as Consul's
//     checks do.
//   - [Handler] and [Client]: the registry's HTTP API and its client for
//     other processes. With [HandlerOptions.Auth] (a [consensus.Auth]) only
//     authenticated callers reach it, each to the services its role allows
//     — an instance writes its own service, a balancer reads — with the
//     cluster's TLS around it (the guide's "Security Considerations"):
//     without them anyone who reaches the registry can register itself as
//     any service and receive its traffic.
//
// # Trade-offs (from the guide)
//
// A registry on a consensus store is consistent — every client sees the
// same instances in the same order of changes — and survives a minority of
// its nodes, at the price of a quorum write per registration and
// heartbeat. The TTL sets how long a dead instance keeps receiving
// traffic: a short TTL removes it sooner but costs more heartbeats and
// risks dropping a live instance that pauses; active health checks find a
// dead instance sooner, and one that still heartbeats but cannot serve.
package registry

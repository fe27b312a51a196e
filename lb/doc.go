// Package lb implements the load-balancing patterns of the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Scalability Patterns → Load Balancing Strategies" (round robin, least
// connections, IP hash, weighted round robin, geographic, health check
// integration), with "Fault Tolerance → Failover" and "Latency
// Optimization → Load Balancing": the algorithms Envoy and gRPC offer, in
// one API, for Go clients and proxies.
//
// # One interface
//
// Every algorithm implements [Balancer]. A request asks for a backend with
// [Balancer.Pick] and reports how it went with [Pick.Done], so load-aware
// algorithms, statistics and outlier detection learn from every request:
//
//	b, err := lb.NewP2C(backends, lb.Options{}) // or NewRoundRobin, NewPeakEWMA, ...
//	p, err := b.Pick(ctx, lb.Request{Key: clientIP})
//	err = call(p.Addr())
//	p.Done(lb.Result{Err: err, Latency: elapsed})
//
// Picking allocates nothing. A backend's weight must be given (> 0): a
// zero weight is an error, never a silent default. The backend set changes
// at run time with [Balancer.Add], [Balancer.Remove], [Balancer.Drain],
// [Balancer.SetWeight] and [Balancer.Update] while traffic flows;
// [Balancer.Stats] shows each backend's in-flight requests, requests,
// failures, latency and state.
//
// # Cost per request
//
// Every pick and Done keeps the statistics above with one atomic add on
// each side, on a cache line of the backend's own, plus a latency average
// when a latency is reported; [PeakEWMA] also needs the time on every
// pick: the monotonic clock, or, while the balancer makes more than some
// 64,000 picks a second, a coarse clock that a goroutine of its own
// refreshes every millisecond and stops when the load goes (as nginx and
// HAProxy cache the time). Where a non-load-aware algorithm's pick must cost no more
// than gRPC's, [Options.DisableStats] drops the counters: a [RoundRobin]
// pick is then a single atomic add.
//
// # Algorithms (one file each)
//
//   - [RoundRobin]: lock-free rotation; ignores capacity and load.
//   - [SmoothWeighted]: nginx's smooth weighted round robin; [EDF]: Envoy's
//     earliest-deadline-first weighted round robin.
//   - [Random], [WeightedRandom].
//   - [LeastConn], [WeightedLeastConn]: exact, by requests in flight.
//   - [P2C]: least request with the power of two random choices.
//   - [PeakEWMA]: Finagle's and Linkerd's latency-aware balancer.
//   - [IPHash]: nginx's ip_hash; [RingHash] and [Maglev]: consistent
//     hashing on the shard package's [shard.Ring] and [shard.Maglev].
//   - [Geo]: the nearest healthy zone, with spill-over.
//
// # Health
//
// Backends leave rotation, for every algorithm, when an active
// [HealthChecker] (HTTP or TCP probes with interval, timeout, jitter and
// thresholds) marks them unhealthy, when passive outlier detection
// ([OutlierOptions]) ejects them, or when they are drained. Below
// [Options.PanicThreshold] healthy backends the balancer spreads over all
// of them rather than overload the few; [SlowStartOptions] ramps up
// backends that return. State changes reach [Options.OnEvent].
//
// # Failover and HTTP
//
// [Failover] retries a failed request on another backend, never the same
// one twice unless it is the only one. [Proxy] is an HTTP reverse proxy on
// [net/http/httputil.ReverseProxy] that uses any Balancer, passes the
// client's Host through, sets the X-Forwarded-* headers, reports results
// back, fails over for idempotent requests and answers 503 when no backend
// is available.
//
// # Time and randomness
//
// [Options.Now] and [Options.Rand] let a simulation drive a balancer on
// virtual time with reproducible picks: the trade-off lab
// (examples/tradeoffs, -only lb) runs these balancers on the internal/sim
// engine to reproduce the guide's claims and Linkerd's "Beyond Round Robin"
// measurements.
package lb

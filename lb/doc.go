// Package lb implements the load-balancing patterns of the guide
// System Design Round — Principal Engineer Interview Preparation,
// "Scalability Patterns → Load Balancing Strategies" (round robin, least
// connections, IP hash, weighted round robin, geographic, health check
// integration), with "Fault Tolerance → Failover", "Latency Optimization →
// Load Balancing" and the balancer's side of "Microservices Architecture →
// Service Discovery": the algorithms Envoy and gRPC offer, in one API, for
// Go clients and proxies.
//
// # One balancer, algorithms as values
//
// [New] builds a [Balancer] over a set of backends with one [Algorithm]. A
// request asks for a backend with [Balancer.Pick] and reports how it went
// with [Pick.Done], so load-aware algorithms, statistics and outlier
// detection learn from every request:
//
//	b, err := lb.New(lb.P2C{}, backends, lb.Options{}) // or lb.RoundRobin{}, lb.PeakEWMA{Decay: 5 * time.Second}, ...
//	p, err := b.Pick(ctx, lb.Request{Key: clientIP})
//	err = call(p.Addr())
//	p.Done(lb.Result{Err: err, Latency: elapsed})
//
// An algorithm is a small value that carries only its own settings;
// [Options] holds what every algorithm shares. Picking allocates nothing. A
// backend's weight must be given (> 0): a zero weight is an error, never a
// silent default. The backend set changes at run time with [Balancer.Add],
// [Balancer.Remove], [Balancer.Drain], [Balancer.SetWeight] and
// [Balancer.Update] while traffic flows; [Balancer.Stats] shows each
// backend's in-flight requests, requests, failures, latency and state.
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
// # Cost per request
//
// Every pick and Done keeps the statistics above with one atomic add on
// each side, on a cache line of the backend's own, plus a latency average
// when a latency is reported. Where a non-load-aware algorithm's pick must
// cost no more than gRPC's, [Options.DisableStats] drops the counters: a
// [RoundRobin] pick is then a single atomic add. [PeakEWMA] needs the time
// on every pick (every algorithm does while an ejection or a slow start is
// pending): by default it reads the monotonic clock; with a [CoarseClock]
// in [Options.Clock] it loads the value a goroutine of the caller's
// refreshes every tick. The balancer itself starts no goroutine.
// BenchmarkBalancer_Pick, BenchmarkBalancer_PickNoStats and
// BenchmarkBalancer_PickSelfTimed measure each case on your machine; the
// bench module's BenchmarkLB_Pick and BenchmarkLB_PickEWMA run them beside
// gRPC-go's pickers and go-kratos's P2C-over-EWMA selector.
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
// # Service discovery
//
// [Follow] keeps a balancer's backend set equal to what a [Source] (a
// service registry, DNS SRV records, a static file) reports: new backends
// enter through slow start, backends that leave are drained and then
// removed. A balancer that follows a registry inside the client is
// client-side discovery; a [Proxy] over it is server-side discovery.
//
// # Failover and HTTP
//
// [Failover] retries a failed request on another backend, never the same
// one twice unless it is the only one. [Proxy] is an HTTP reverse proxy on
// [net/http/httputil.ReverseProxy] over a Balancer: it passes the client's
// Host through, sets the X-Forwarded-* headers, reports results back,
// fails over for idempotent requests and answers 503 when no backend is
// available.
//
// # Time and randomness
//
// [Options.Now] and [Options.Rand] let a simulation drive a balancer on
// virtual time with reproducible picks: the trade-off lab
// (examples/tradeoffs, -only lb) runs these balancers on the internal/sim
// engine to reproduce the guide's claims and Linkerd's "Beyond Round Robin"
// measurements.
package lb

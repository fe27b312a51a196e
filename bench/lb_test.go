package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/go-kratos/kratos/v2/selector"
	"github.com/go-kratos/kratos/v2/selector/p2c"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/leastrequest"
	"google.golang.org/grpc/balancer/roundrobin"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/sysdesign-go/sysdesign/lb"
)

// The peers of package lb: gRPC-go's round_robin and least_request (P2C)
// balancers, driven through their public balancer API by a fake
// ClientConn whose SubConns become READY at once, so that only their
// pickers are measured; and go-kratos's p2c selector, power of two choices
// over its EWMA nodes (a time-decayed latency average times the requests
// in flight, timed by the selector itself from pick to done), the Go
// counterpart of Finagle's peak EWMA that the kratos and go-zero frameworks
// ship.

// picker is one pick and its done, the whole cost a request pays to a
// balancer; every balancer measured here is adapted to it.
type picker func(ctx context.Context) error

// namedPicker is a balancer under its sub-benchmark name, and how to
// build it over n backends.
type namedPicker struct {
	name string
	new  func(tb testing.TB, n int) picker
}

// lbBackends are n backends of equal weight, as the peers see them.
func lbBackends(n int) []lb.Backend {
	out := make([]lb.Backend, n)
	for i := range out {
		out[i] = lb.Backend{Addr: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: 1}
	}
	return out
}

// ours adapts one of this library's balancers. The result carries no
// latency, as the peers get none: [lb.PeakEWMA] then times the request
// itself, as kratos's selector does.
func ours(alg lb.Algorithm, opts lb.Options) func(tb testing.TB, n int) picker {
	return func(tb testing.TB, n int) picker {
		tb.Helper()
		bal, err := lb.New(alg, lbBackends(n), opts)
		if err != nil {
			tb.Fatal(err)
		}
		return func(ctx context.Context) error {
			p, err := bal.Pick(ctx, lb.Request{})
			if err != nil {
				return err
			}
			p.Done(lb.Result{})
			return nil
		}
	}
}

type grpcSubConn struct {
	balancer.SubConn // the interface requires embedding; unused methods panic
	addr             string
	listener         func(balancer.SubConnState)
	health           func(balancer.SubConnState)
	cc               *grpcClientConn
}

func (s *grpcSubConn) Connect()  { s.cc.pending = append(s.cc.pending, s) }
func (s *grpcSubConn) Shutdown() {}
func (s *grpcSubConn) RegisterHealthListener(f func(balancer.SubConnState)) {
	s.health = f
	s.cc.healthPending = append(s.cc.healthPending, s)
}

type grpcMetrics struct{ estats.MetricsRecorder }

func (grpcMetrics) RecordInt64Count(*estats.Int64CountHandle, int64, ...string)       {}
func (grpcMetrics) RecordFloat64Count(*estats.Float64CountHandle, float64, ...string) {}
func (grpcMetrics) RecordInt64Histo(*estats.Int64HistoHandle, int64, ...string)       {}
func (grpcMetrics) RecordFloat64Histo(*estats.Float64HistoHandle, float64, ...string) {}
func (grpcMetrics) RecordInt64Gauge(*estats.Int64GaugeHandle, int64, ...string)       {}
func (grpcMetrics) RecordInt64UpDownCount(*estats.Int64UpDownCountHandle, int64, ...string) {
}
func (grpcMetrics) RegisterAsyncReporter(estats.AsyncMetricReporter, ...estats.AsyncMetric) func() {
	return func() {}
}

type grpcClientConn struct {
	balancer.ClientConn
	mu            sync.Mutex // guards picker and state, which the balancer sets
	picker        balancer.Picker
	state         connectivity.State
	pending       []*grpcSubConn
	healthPending []*grpcSubConn
}

func (c *grpcClientConn) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	return &grpcSubConn{addr: addrs[0].Addr, listener: opts.StateListener, cc: c}, nil
}
func (c *grpcClientConn) RemoveSubConn(balancer.SubConn)                       {}
func (c *grpcClientConn) UpdateAddresses(balancer.SubConn, []resolver.Address) {}
func (c *grpcClientConn) ResolveNow(resolver.ResolveNowOptions)                {}
func (c *grpcClientConn) Target() string                                       { return "bench" }
func (c *grpcClientConn) MetricsRecorder() estats.MetricsRecorder              { return grpcMetrics{} }
func (c *grpcClientConn) UpdateState(s balancer.State) {
	c.mu.Lock()
	c.picker, c.state = s.Picker, s.ConnectivityState
	c.mu.Unlock()
}

// grpcPicker builds gRPC's balancer name over n READY backends and returns
// its picker.
func grpcPicker(tb testing.TB, name string, n int) balancer.Picker {
	tb.Helper()
	cc := &grpcClientConn{}
	builder := balancer.Get(name)
	bal := builder.Build(cc, balancer.BuildOptions{})
	tb.Cleanup(bal.Close)
	var cfg serviceconfig.LoadBalancingConfig
	if p, ok := builder.(balancer.ConfigParser); ok {
		c, err := p.ParseConfig(json.RawMessage(`{"choiceCount": 2}`))
		if err != nil {
			tb.Fatal(err)
		}
		cfg = c
	}
	var eps []resolver.Endpoint
	for i := range n {
		eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{{Addr: fmt.Sprintf("10.0.0.%d:80", i+1)}}})
	}
	if err := bal.UpdateClientConnState(balancer.ClientConnState{ResolverState: resolver.State{Endpoints: eps}, BalancerConfig: cfg}); err != nil {
		tb.Fatal(err)
	}
	for len(cc.pending) > 0 || len(cc.healthPending) > 0 {
		pending, health := cc.pending, cc.healthPending
		cc.pending, cc.healthPending = nil, nil
		for _, sc := range pending {
			sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Connecting})
			sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Ready})
		}
		for _, sc := range health {
			sc.health(balancer.SubConnState{ConnectivityState: connectivity.Ready})
		}
	}
	if cc.state != connectivity.Ready {
		tb.Fatalf("gRPC %s is %v, not READY", name, cc.state)
	}
	return cc.picker
}

// grpc adapts gRPC's balancer name.
func grpc(name string) func(tb testing.TB, n int) picker {
	return func(tb testing.TB, n int) picker {
		p := grpcPicker(tb, name, n)
		return func(ctx context.Context) error {
			r, err := p.Pick(balancer.PickInfo{Ctx: ctx, FullMethodName: "/svc/M"})
			if err != nil {
				return err
			}
			if r.Done != nil {
				r.Done(balancer.DoneInfo{})
			}
			return nil
		}
	}
}

// kratosSelector builds kratos's p2c selector over n backends.
func kratosSelector(n int) selector.Selector {
	sel := p2c.New()
	nodes := make([]selector.Node, n)
	for i := range nodes {
		nodes[i] = selector.NewNode("http", fmt.Sprintf("10.0.0.%d:80", i+1), nil)
	}
	sel.Apply(nodes)
	return sel
}

// kratos adapts kratos's p2c selector.
func kratos(_ testing.TB, n int) picker {
	sel := kratosSelector(n)
	return func(ctx context.Context) error {
		_, done, err := sel.Select(ctx)
		if err != nil {
			return err
		}
		done(ctx, selector.DoneInfo{})
		return nil
	}
}

// The peer harness really balances: gRPC's pickers spread over every
// backend.
func TestGRPCPeerHarness(t *testing.T) {
	for _, name := range []string{roundrobin.Name, leastrequest.Name} {
		p := grpcPicker(t, name, 3)
		seen := map[string]int{}
		for range 300 {
			r, err := p.Pick(balancer.PickInfo{Ctx: context.Background(), FullMethodName: "/svc/M"})
			if err != nil {
				t.Fatal(err)
			}
			seen[r.SubConn.(*grpcSubConn).addr]++
			if r.Done != nil {
				r.Done(balancer.DoneInfo{})
			}
		}
		if len(seen) != 3 {
			t.Fatalf("%s picked %v", name, seen)
		}
	}
}

// The peer harness really balances: kratos's selector spreads over every
// backend.
func TestKratosPeerHarness(t *testing.T) {
	sel := kratosSelector(3)
	seen := map[string]int{}
	for range 300 {
		n, done, err := sel.Select(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		seen[n.Address()]++
		done(context.Background(), selector.DoneInfo{})
	}
	if len(seen) != 3 {
		t.Fatalf("kratos p2c picked %v", seen)
	}
}

// benchmarkPickers measures one pick and its done for each balancer at 3,
// 10 and 100 backends, on one goroutine and on all of them.
func benchmarkPickers(b *testing.B, balancers []namedPicker) {
	ctx := context.Background()
	for _, bal := range balancers {
		for _, n := range []int{3, 10, 100} {
			b.Run(fmt.Sprintf("algo=%s/backends=%d", bal.name, n), func(b *testing.B) {
				pick := bal.new(b, n)
				b.ReportAllocs()
				for b.Loop() {
					if err := pick(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("algo=%s/backends=%d/parallel", bal.name, n), func(b *testing.B) {
				pick := bal.new(b, n)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := pick(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkLB_Pick is lb's RoundRobin (with its per-backend statistics,
// and without them: Options.DisableStats, the same work as gRPC's picker)
// and P2C beside gRPC-go's round_robin and least_request pickers.
func BenchmarkLB_Pick(b *testing.B) {
	benchmarkPickers(b, []namedPicker{
		{"round-robin", ours(lb.RoundRobin{}, lb.Options{})},
		{"round-robin-no-stats", ours(lb.RoundRobin{}, lb.Options{DisableStats: true})},
		{"grpc-round-robin", grpc(roundrobin.Name)},
		{"p2c", ours(lb.P2C{}, lb.Options{})},
		{"grpc-least-request", grpc(leastrequest.Name)},
	})
}

// BenchmarkLB_PickEWMA is lb's PeakEWMA timing each request itself (the
// caller reports no latency) beside kratos's p2c selector, which does the
// same.
func BenchmarkLB_PickEWMA(b *testing.B) {
	benchmarkPickers(b, []namedPicker{
		{"peak-ewma", ours(lb.PeakEWMA{}, lb.Options{})},
		{"kratos-p2c-ewma", kratos},
	})
}

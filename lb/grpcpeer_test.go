package lb

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/leastrequest"
	"google.golang.org/grpc/balancer/roundrobin"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// The peer in the benchmarks: gRPC-go's round_robin and least_request
// (P2C) balancers, driven through their public balancer API by a fake
// ClientConn whose SubConns become READY at once, so that only their
// pickers are measured.

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
	mu            sync.Mutex
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

// The peer harness really balances: both pickers spread over every
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

// BenchmarkPeer_Pick is gRPC-go's pick and done, beside
// BenchmarkBalancer_Pick's algo=round-robin and algo=p2c.
func BenchmarkPeer_Pick(b *testing.B) {
	for _, peer := range []struct{ name, builder string }{{"grpc-round-robin", roundrobin.Name}, {"grpc-least-request", leastrequest.Name}} {
		for _, n := range []int{3, 10, 100} {
			info := balancer.PickInfo{Ctx: context.Background(), FullMethodName: "/svc/M"}
			b.Run(fmt.Sprintf("algo=%s/backends=%d", peer.name, n), func(b *testing.B) {
				p := grpcPicker(b, peer.builder, n)
				b.ReportAllocs()
				for b.Loop() {
					r, err := p.Pick(info)
					if err != nil {
						b.Fatal(err)
					}
					if r.Done != nil {
						r.Done(balancer.DoneInfo{})
					}
				}
			})
			b.Run(fmt.Sprintf("algo=%s/backends=%d/parallel", peer.name, n), func(b *testing.B) {
				p := grpcPicker(b, peer.builder, n)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						r, err := p.Pick(info)
						if err != nil {
							b.Error(err)
							return
						}
						if r.Done != nil {
							r.Done(balancer.DoneInfo{})
						}
					}
				})
			})
		}
	}
}

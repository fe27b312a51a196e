package lb

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// benchKeys are client addresses for the hash algorithms.
var benchKeys = func() []string {
	k := make([]string, 1024)
	for i := range k {
		k[i] = fmt.Sprintf("10.%d.%d.%d", i%7, i/7%256, i%251)
	}
	return k
}()

// benchLatencies are the latencies benchmarks report: 0.5–2ms, spread
// as a log-normal-like mix, so that latency averages move as they do under
// real traffic (a constant latency would leave peak EWMA nothing to write).
var benchLatencies = func() []time.Duration {
	l := make([]time.Duration, 1024)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range l {
		l[i] = time.Duration(float64(time.Millisecond) * math.Exp(r.NormFloat64()*0.35))
		l[i] = min(max(l[i], 500*time.Microsecond), 2*time.Millisecond)
	}
	return l
}()

func benchBalancer(b *testing.B, a algo, n int) *Balancer {
	b.Helper()
	bs := backends(n)
	for i := range bs {
		bs[i].Weight = float64(1 + i%3)
		bs[i].Zone = fmt.Sprintf("z%d", i%3)
	}
	var opts Options
	switch a.alg.(type) {
	case Geo:
		a.alg = Geo{ZoneLatency: map[string]map[string]time.Duration{"z1": {"z0": time.Millisecond}}}
	case PeakEWMA:
		if a.coarse {
			c, err := NewCoarseClock(time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.Close(context.Background()) })
			opts.Clock = c
		}
	}
	bal, err := a.new(bs, opts)
	if err != nil {
		b.Fatal(err)
	}
	return bal
}

// benchAlgos are the algorithms, and peak EWMA on a CoarseClock.
var benchAlgos = append(algos[:len(algos):len(algos)], algo{name: "peak-ewma-coarse", alg: PeakEWMA{}, coarse: true})

// BenchmarkBalancer_Pick measures one pick and its Done, the whole cost a
// request pays to the balancer, for every algorithm at 3, 10 and 100
// backends, on one goroutine and on all of them; peak-ewma-coarse is peak
// EWMA on a CoarseClock (Options.Clock), which spares its picks the clock
// read.
func BenchmarkBalancer_Pick(b *testing.B) {
	ctx := context.Background()
	for _, a := range benchAlgos {
		for _, n := range []int{3, 10, 100} {
			b.Run(fmt.Sprintf("algo=%s/backends=%d", a.name, n), func(b *testing.B) {
				bal := benchBalancer(b, a, n)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					p, err := bal.Pick(ctx, Request{Key: benchKeys[i&1023], Zone: "z1"})
					if err != nil {
						b.Fatal(err)
					}
					p.Done(Result{Latency: benchLatencies[i&1023]})
					i++
				}
			})
			b.Run(fmt.Sprintf("algo=%s/backends=%d/parallel", a.name, n), func(b *testing.B) {
				bal := benchBalancer(b, a, n)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						p, err := bal.Pick(ctx, Request{Key: benchKeys[i&1023], Zone: "z1"})
						if err != nil {
							b.Error(err)
							return
						}
						p.Done(Result{Latency: benchLatencies[i&1023]})
						i++
					}
				})
			})
		}
	}
}

// BenchmarkBalancer_Update measures a rotation change (a health flip),
// which rebuilds the algorithm's state.
func BenchmarkBalancer_Update(b *testing.B) {
	for _, a := range algos {
		b.Run("algo="+a.name+"/backends=100", func(b *testing.B) {
			bal := benchBalancer(b, a, 100)
			b.ReportAllocs()
			healthy := false
			for b.Loop() {
				if err := bal.SetHealthy("10.0.0.7:80", healthy); err != nil {
					b.Fatal(err)
				}
				healthy = !healthy
			}
		})
	}
}

// BenchmarkBalancer_PickNoStats is BenchmarkBalancer_Pick with
// Options.DisableStats, for the algorithms that allow it: a round-robin
// pick is then one atomic add, the same work as gRPC's picker.
func BenchmarkBalancer_PickNoStats(b *testing.B) {
	ctx := context.Background()
	for _, a := range algos {
		if _, err := a.new(backends(1), Options{DisableStats: true}); err != nil {
			continue // picks by load
		}
		for _, n := range []int{3, 10, 100} {
			bs := backends(n)
			for i := range bs {
				bs[i].Weight = float64(1 + i%3)
			}
			bal, err := a.new(bs, Options{DisableStats: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("algo=%s/backends=%d", a.name, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					p, err := bal.Pick(ctx, Request{Key: benchKeys[i&1023]})
					if err != nil {
						b.Fatal(err)
					}
					p.Done(Result{Latency: benchLatencies[i&1023]})
					i++
				}
			})
			b.Run(fmt.Sprintf("algo=%s/backends=%d/parallel", a.name, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						p, err := bal.Pick(ctx, Request{Key: benchKeys[i&1023]})
						if err != nil {
							b.Error(err)
							return
						}
						p.Done(Result{Latency: benchLatencies[i&1023]})
						i++
					}
				})
			})
		}
	}
}

// BenchmarkBalancer_PickSelfTimed is peak EWMA when callers do not report
// latencies (Result.Latency zero): the balancer then reads the clock on
// every pick and every Done to time requests itself.
func BenchmarkBalancer_PickSelfTimed(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{3, 10, 100} {
		b.Run(fmt.Sprintf("algo=peak-ewma/backends=%d", n), func(b *testing.B) {
			bal, err := New(PeakEWMA{}, backends(n), Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				p, err := bal.Pick(ctx, Request{})
				if err != nil {
					b.Fatal(err)
				}
				p.Done(Result{})
			}
		})
	}
}

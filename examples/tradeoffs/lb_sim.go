package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/lb"
)

const lbSection = "Scalability Patterns → Load Balancing Strategies"

// lbAlgo is one balancer under test.
type lbAlgo struct {
	name string
	new  func([]lb.Backend, lb.Options) (*lb.Balancer, error)
}

// String returns the algorithm's name, as the tables show it.
func (a lbAlgo) String() string { return a.name }

func lbCtor(alg lb.Algorithm) func([]lb.Backend, lb.Options) (*lb.Balancer, error) {
	return func(b []lb.Backend, o lb.Options) (*lb.Balancer, error) { return lb.New(alg, b, o) }
}

var (
	lbRoundRobin   = lbAlgo{"round robin", lbCtor(lb.RoundRobin{})}
	lbSmoothWRR    = lbAlgo{"weighted round robin (smooth)", lbCtor(lb.SmoothWeighted{})}
	lbEDF          = lbAlgo{"weighted round robin (EDF)", lbCtor(lb.EDF{})}
	lbRandom       = lbAlgo{"random", lbCtor(lb.Random{})}
	lbWRandom      = lbAlgo{"weighted random", lbCtor(lb.WeightedRandom{})}
	lbLeastConn    = lbAlgo{"least connections", lbCtor(lb.LeastConn{})}
	lbWLeastConn   = lbAlgo{"weighted least connections", lbCtor(lb.WeightedLeastConn{})}
	lbP2C          = lbAlgo{"P2C least request", lbCtor(lb.P2C{})}
	lbPeakEWMA     = lbAlgo{"peak EWMA", lbCtor(lb.PeakEWMA{})}
	lbIPHash       = lbAlgo{"IP hash (/24, nginx)", lbCtor(lb.IPHash{})}
	lbRingHash     = lbAlgo{"ring hash (full IP)", lbCtor(lb.RingHash{})}
	lbMaglev       = lbAlgo{"Maglev (full IP)", lbCtor(lb.Maglev{})}
	lbGeo          = lbAlgo{"geo: nearest region, spill-over", lbCtor(lb.Geo{})}
	errLBTimeout   = errors.New("client timeout")
	errLBBackend   = errors.New("backend error")
	lbBackgroundCx = context.Background()
)

// lbCluster is a set of simulated backends behind a real balancer, driven
// by one engine's virtual clock.
type lbCluster struct {
	e        *sim.Engine
	bal      *lb.Balancer
	stations []*sim.Station
	index    map[string]int
	// failing marks backends that answer every request with a fast error.
	failing []bool
	// extra returns a network delay added to a request to backend i.
	extra func(req lb.Request, i int) time.Duration
	// timeout, if set, is the client's deadline: the balancer hears of a
	// failure at the deadline.
	timeout time.Duration
	served  []int // requests per backend
}

func lbAddrs(n int) []lb.Backend {
	out := make([]lb.Backend, n)
	for i := range out {
		out[i] = lb.Backend{Addr: fmt.Sprintf("b%d", i), Weight: 1}
	}
	return out
}

func newLBCluster(e *sim.Engine, a lbAlgo, backends []lb.Backend, servers []int, speeds []float64, opts lb.Options) (*lbCluster, error) {
	opts.Now = e.Clock()
	bal, err := a.new(backends, opts)
	if err != nil {
		return nil, err
	}
	c := &lbCluster{e: e, bal: bal, index: map[string]int{}, failing: make([]bool, len(backends)), served: make([]int, len(backends))}
	for i, b := range backends {
		st, err := sim.NewStation(e, servers[i], speeds[i])
		if err != nil {
			return nil, err
		}
		c.stations = append(c.stations, st)
		c.index[b.Addr] = i
	}
	return c, nil
}

// send balances one request of the given work and calls done with its
// client-side latency and error (nil, a backend error, the timeout, or a
// pick error).
func (c *lbCluster) send(req lb.Request, work time.Duration, done func(backend int, lat time.Duration, err error)) {
	p, err := c.bal.Pick(lbBackgroundCx, req)
	if err != nil {
		done(-1, 0, err)
		return
	}
	i := c.index[p.Addr()]
	c.served[i]++
	start := c.e.Now()
	var net time.Duration
	if c.extra != nil {
		net = c.extra(req, i)
	}
	finished := false
	finish := func(err error) {
		if finished {
			return
		}
		finished = true
		lat := c.e.Now() - start
		p.Done(lb.Result{Err: err, Latency: max(lat, 1)})
		done(i, lat, err)
	}
	if c.timeout > 0 {
		c.e.Schedule(c.timeout, func() { finish(errLBTimeout) })
	}
	if c.failing[i] {
		c.e.Schedule(net+time.Millisecond, func() { finish(errLBBackend) })
		return
	}
	c.e.Schedule(net/2, func() {
		c.stations[i].Submit(work, func(_, _ time.Duration) {
			c.e.Schedule(net-net/2, func() { finish(nil) })
		})
	})
}

// lbDrive schedules arrivals until n requests were sent; each request is
// made by mk(i) and its outcome goes to rec.
func lbDrive(e *sim.Engine, arr sim.Arrivals, n int, send func(i int)) {
	var next func(i int)
	next = func(i int) {
		send(i)
		if i+1 < n {
			e.Schedule(arr.Next(), func() { next(i + 1) })
		}
	}
	e.Schedule(0, func() { next(0) })
}

func lbShares(served []int) (shares []float64, maxOverMean float64) {
	total := 0
	for _, s := range served {
		total += s
	}
	mx := 0.0
	for _, s := range served {
		f := float64(s) / float64(max(total, 1))
		shares = append(shares, f)
		mx = max(mx, f)
	}
	return shares, mx * float64(len(served))
}

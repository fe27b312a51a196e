package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/consensus/registry"
	"github.com/sysdesign-go/sysdesign/lb"
)

// discoveryCluster is a 3-node registry store on the LAN preset with a
// 50 ms lease sweep.
func discoveryCluster(ctx context.Context) (*consensus.LocalCluster, error) {
	return consensus.NewLocalCluster(ctx, consensus.ClusterOptions{Nodes: 3,
		Node: consensus.Options{LeaseSweepInterval: discoverySweep}})
}

const discoverySweep = 50 * time.Millisecond

// helloServer is a service instance: an HTTP server on loopback.
type helloServer struct {
	srv  *http.Server
	addr string
	done chan error
}

func startHello(name string) (*helloServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &helloServer{addr: ln.Addr().String(), done: make(chan error, 1), srv: &http.Server{ReadHeaderTimeout: time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) })}}
	go func() { h.done <- h.srv.Serve(ln) }()
	return h, nil
}

// kill closes the server and its connections at once.
func (h *helloServer) kill() {
	_ = h.srv.Close()
	<-h.done
}

// discoveryGet sends one GET to the backend b picks and reports to b.
func discoveryGet(ctx context.Context, hc *http.Client, b *lb.Balancer) error {
	p, err := b.Pick(ctx, lb.Request{})
	if err != nil {
		return err
	}
	start := time.Now()
	err = httpGet(ctx, hc, "http://"+p.Addr()+"/")
	p.Done(lb.Result{Err: err, Latency: time.Since(start)})
	return err
}

func httpGet(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func discoveryMean(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range v {
		sum += d
	}
	return sum / time.Duration(len(v))
}

func sortedCopy(v []time.Duration) []time.Duration {
	out := slices.Clone(v)
	slices.Sort(out)
	return out
}

// followSource builds a P2C balancer over the source's first set of want
// backends and has lb.Follow keep it current (additions in, removals
// drained) until ctx ends; the returned channel yields Follow's end.
func followSource(ctx context.Context, src *registry.Source, want int, opts lb.Options) (*lb.Balancer, <-chan error, error) {
	var first []lb.Backend
	wctx, found := context.WithCancel(ctx)
	err := src.Watch(wctx, func(bs []lb.Backend) {
		if len(bs) == want && first == nil {
			first = bs
			found()
		}
	})
	found()
	if first == nil {
		return nil, nil, err
	}
	bal, err := lb.New(lb.P2C{}, first, opts)
	if err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- lb.Follow(ctx, bal, src) }()
	return bal, done, nil
}

// Command lb starts a few local HTTP backends of different speeds, puts the
// lb package's reverse proxy in front of them, drives the same load through
// it with each balancing algorithm, and prints every backend's share of
// requests and the latency clients saw.
//
// Guide: "Scalability Patterns → Load Balancing Strategies".
//
//	go run ./examples/lb
//	go run ./examples/lb -requests 2000 -concurrency 32
//
// One backend is four times slower than the others: round robin gives it
// its full share anyway, the load-aware algorithms send it less.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sysdesign-go/sysdesign/lb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fs := flag.NewFlagSet("lb", flag.ContinueOnError)
	requests := fs.Int("requests", 600, "requests per algorithm")
	concurrency := fs.Int("concurrency", 12, "clients sending at once")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	if err := run(ctx, os.Stdout, config{requests: *requests, concurrency: *concurrency, unit: 2 * time.Millisecond}); err != nil {
		fmt.Fprintln(os.Stderr, "lb:", err)
		os.Exit(1)
	}
}

type config struct {
	requests, concurrency int
	unit                  time.Duration // the fast backends' service time
}

// backendSpec is one simulated server: its service time is slow × unit,
// and it serves at most workers requests at once (more wait).
type backendSpec struct {
	name    string
	slow    int
	workers int
}

var specs = []backendSpec{{"fast-a", 1, 4}, {"fast-b", 1, 4}, {"fast-c", 1, 4}, {"slow-d", 4, 4}}

// algorithms are the balancers compared, each built by one line.
var algorithms = []struct {
	name string
	alg  lb.Algorithm
}{
	{"round robin", lb.RoundRobin{}},
	{"weighted round robin", lb.SmoothWeighted{}},
	{"least connections", lb.LeastConn{}},
	{"P2C least request", lb.P2C{}},
	{"peak EWMA", lb.PeakEWMA{}},
}

func run(ctx context.Context, out io.Writer, cfg config) error {
	if cfg.requests < 1 || cfg.concurrency < 1 {
		return fmt.Errorf("requests (%d) and concurrency (%d) must be positive", cfg.requests, cfg.concurrency)
	}
	var backends []lb.Backend
	for _, s := range specs {
		srv := startBackend(s, cfg.unit)
		defer srv.Close()
		// Weights for the weighted algorithms: capacity is 1/slowness.
		backends = append(backends, lb.Backend{Addr: srv.URL, Weight: 4 / float64(s.slow), Meta: map[string]string{"name": s.name}})
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "algorithm\t"
	for _, s := range specs {
		header += s.name + " share\t"
	}
	fmt.Fprintln(tw, header+"p50\tp99\terrors\t")
	for _, a := range algorithms {
		bal, err := lb.New(a.alg, backends, lb.Options{})
		if err != nil {
			return err
		}
		res, err := drive(ctx, bal, cfg)
		if err != nil {
			return err
		}
		row := a.name + "\t"
		stats := bal.Stats()
		for _, s := range stats.Backends {
			row += fmt.Sprintf("%.0f%%\t", 100*float64(s.Requests)/float64(cfg.requests))
		}
		fmt.Fprintf(tw, "%s%v\t%v\t%d\t\n", row, res.p50.Round(100*time.Microsecond), res.p99.Round(100*time.Microsecond), res.errors)
	}
	return tw.Flush()
}

// startBackend serves every request after slow × unit of work, on at most
// workers requests at once.
func startBackend(s backendSpec, unit time.Duration) *httptest.Server {
	sem := make(chan struct{}, s.workers)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		time.Sleep(time.Duration(s.slow) * unit)
		<-sem
		fmt.Fprintf(w, "%s\n", s.name)
	}))
}

type result struct {
	p50, p99 time.Duration
	errors   int
}

// drive sends cfg.requests requests through a proxy over bal from
// cfg.concurrency clients and measures their latency.
func drive(ctx context.Context, bal *lb.Balancer, cfg config) (result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	proxy, err := lb.NewProxy(bal, lb.ProxyOptions{Transport: tr})
	if err != nil {
		return result{}, err
	}
	front := httptest.NewServer(proxy)
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()

	var mu sync.Mutex
	var lats []time.Duration
	errs := 0
	work := make(chan struct{})
	var wg sync.WaitGroup
	for range cfg.concurrency {
		wg.Go(func() {
			for range work {
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL, nil)
				resp, err := client.Do(req)
				ok := err == nil
				if ok {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok = resp.StatusCode == http.StatusOK
				}
				mu.Lock()
				lats = append(lats, time.Since(start))
				if !ok {
					errs++
				}
				mu.Unlock()
			}
		})
	}
	for range cfg.requests {
		select {
		case work <- struct{}{}:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	slices.Sort(lats)
	at := func(p float64) time.Duration { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	return result{p50: at(0.5), p99: at(0.99), errors: errs}, nil
}

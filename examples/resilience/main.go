// Command resilience runs a flaky HTTP dependency — made flaky by package
// resilience/fault's injector — and a client that calls it through
// a composed pipeline (fallback → retry with a budget → circuit breaker →
// bulkhead → per-attempt timeout), then prints what each policy did.
//
// Guide: "Fault Tolerance → Circuit Breakers"; "Fault Tolerance → Failover"
// (automatic recovery); "Fault Tolerance → Chaos Engineering" (failure
// injection).
//
// It runs three phases: the dependency is flaky (errors and latency
// spikes), then down (every request aborted with 503), then healthy again.
//
//	go run ./examples/resilience
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
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/fault"
)

func main() {
	requests := flag.Int("requests", 300, "requests per phase")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *requests); err != nil {
		fmt.Fprintln(os.Stderr, "resilience:", err)
		os.Exit(1)
	}
}

// phase is one state of the dependency.
type phase struct {
	name   string
	faults fault.Options
}

func run(ctx context.Context, out io.Writer, requests int) error {
	phases := []phase{
		{"flaky: 20% errors, 10% of requests 200 ms slow", fault.Options{
			AbortProbability: 0.2, AbortStatus: http.StatusServiceUnavailable, Delay: 200 * time.Millisecond, DelayProbability: 0.1}},
		{"down: every request answered 503", fault.Options{AbortProbability: 1}},
		{"healthy", fault.Options{}},
	}
	// The dependency: a handler behind a fault injector we can swap.
	var mu sync.Mutex
	var chaos *fault.Injector
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f := chaos
		mu.Unlock()
		f.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "fresh price: $10")
		})).ServeHTTP(w, r)
	}))
	defer backend.Close()
	client := backend.Client()

	// The client's pipeline, built once.
	// Retries may add at most a fifth to the load (plus 10 per 10 s).
	budget, err := resilience.NewBudget(resilience.BudgetOptions{Ratio: 0.2})
	if err != nil {
		return err
	}
	fallback, err := resilience.NewFallback(resilience.FallbackOptions[string]{Value: "cached price: $9.90 (stale)"})
	if err != nil {
		return err
	}
	// A GET of a price is idempotent, so it may be retried: 3 attempts.
	retry, err := resilience.NewRetry[string](resilience.RetryOptions{
		MaxAttempts: 3, Budget: budget,
		Backoff: resilience.Backoff{Base: 5 * time.Millisecond, Max: 50 * time.Millisecond},
		// An open breaker or a full bulkhead will not be fixed by retrying now.
		RetryIf: func(err error) bool {
			return !errors.Is(err, resilience.ErrOpen) && !errors.Is(err, resilience.ErrBulkheadFull)
		},
	})
	if err != nil {
		return err
	}
	trip, err := resilience.NewCountWindow(resilience.CountWindowOptions{Size: 50, FailureRate: 0.6, MinCalls: 20})
	if err != nil {
		return err
	}
	var transitions []string
	breaker, err := resilience.NewCircuitBreaker[string](resilience.BreakerOptions{
		Name: "pricing", Trip: trip, Timeout: 200 * time.Millisecond, MaxRequests: 2,
		OnStateChange: func(c resilience.StateChange) {
			transitions = append(transitions, fmt.Sprintf("%v→%v", c.From, c.To))
		},
	})
	if err != nil {
		return err
	}
	bulkhead, err := resilience.NewBulkhead(resilience.BulkheadOptions{Name: "pricing", MaxConcurrent: 8, MaxWaiting: 16})
	if err != nil {
		return err
	}
	timeout, err := resilience.NewTimeout[string](resilience.TimeoutOptions{Name: "pricing attempt", Timeout: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	pipeline, err := resilience.NewPipeline(fallback, retry, breaker, resilience.Guarded[string](bulkhead), timeout)
	if err != nil {
		return err
	}
	call := func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, backend.URL, nil)
		if err != nil {
			return "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode >= 500 {
			return "", fmt.Errorf("pricing answered %s", resp.Status)
		}
		return string(body), nil
	}

	for _, ph := range phases {
		f, err := fault.NewInjector(ph.faults)
		if err != nil {
			return err
		}
		mu.Lock()
		chaos = f
		mu.Unlock()
		transitions = transitions[:0]
		r0, b0, k0, f0 := retry.Stats(), breaker.Stats(), bulkhead.Stats(), fallback.Stats()
		answers := map[string]int{}
		var amu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		sem := make(chan struct{}, 8) // 8 concurrent users
		for range requests {
			time.Sleep(time.Millisecond) // users arrive at about 1,000 requests/s
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				v, err := pipeline.Execute(ctx, call)
				if err != nil {
					v = "error: " + err.Error()
				}
				amu.Lock()
				answers[v]++
				amu.Unlock()
			})
		}
		wg.Wait()
		r, b, k, fb, fs := retry.Stats(), breaker.Stats(), bulkhead.Stats(), fallback.Stats(), f.Stats()
		fmt.Fprintf(out, "== %s (%d requests in %v)\n", ph.name, requests, time.Since(start).Round(time.Millisecond))
		fmt.Fprintf(out, "  fault injector: %d requests reached the dependency, %d aborted, %d delayed\n", fs.Requests, fs.Aborts, fs.Delayed)
		fmt.Fprintf(out, "  retry:          %d attempts, %d retries, %d exhausted, %d refused by the budget\n",
			r.Attempts-r0.Attempts, r.Retries-r0.Retries, r.Exhausted-r0.Exhausted, r.BudgetDenied-r0.BudgetDenied)
		fmt.Fprintf(out, "  breaker:        %d calls, %d failures, %d short-circuited; transitions %v; now %v\n",
			b.Calls-b0.Calls, b.Failures-b0.Failures, b.Rejected-b0.Rejected, transitions, b.State)
		fmt.Fprintf(out, "  bulkhead:       %d admitted, %d waited, %d rejected\n", k.Admitted-k0.Admitted, k.Waited-k0.Waited, k.Rejected-k0.Rejected)
		fmt.Fprintf(out, "  fallback:       %d of %d answered by the fallback\n", fb.Fallbacks-f0.Fallbacks, fb.Calls-f0.Calls)
		fmt.Fprintf(out, "  users saw:      %d fresh, %d stale, %d errors\n",
			answers["fresh price: $10"], answers["cached price: $9.90 (stale)"], requests-answers["fresh price: $10"]-answers["cached price: $9.90 (stale)"])
		if ph.name != "healthy" {
			time.Sleep(250 * time.Millisecond) // let the breaker's open timeout pass
		}
	}
	client.CloseIdleConnections()
	return nil
}

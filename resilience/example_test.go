package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/sysdesign-go/sysdesign/resilience"
)

var errUnavailable = errors.New("unavailable")

// Guide: "Fault Tolerance → Circuit Breakers" (closed, open: fail fast).
// After two consecutive failures the breaker opens and fails fast without
// calling.
func ExampleCircuitBreaker() {
	trip, _ := resilience.ConsecutiveFailures(2)
	cb, err := resilience.NewCircuitBreaker[string](resilience.BreakerOptions{
		Name: "inventory", Trip: trip, Timeout: 30 * time.Second,
		OnStateChange: func(c resilience.StateChange) { fmt.Println("state:", c.From, "→", c.To) },
	})
	if err != nil {
		panic(err)
	}
	down := func(context.Context) (string, error) { return "", errUnavailable }
	for range 3 {
		_, err = cb.Execute(context.Background(), down)
		fmt.Println(err)
	}
	fmt.Println("open:", errors.Is(err, resilience.ErrOpen))
	// Output:
	// unavailable
	// state: closed → open
	// unavailable
	// resilience: breaker "inventory": circuit breaker is open
	// open: true
}

// Guide: "Fault Tolerance → Failover" (automatic recovery).
// A retry with exponential backoff outlasts two transient failures.
func ExampleRetry() {
	r, err := resilience.NewRetry[int](resilience.RetryOptions{
		MaxAttempts: 4,
		Backoff:     resilience.Backoff{Base: 100 * time.Millisecond, Jitter: resilience.JitterNone},
		OnRetry:     func(e resilience.RetryEvent) { fmt.Printf("attempt %d failed, waiting %v\n", e.Attempt, e.Delay) },
		Sleep:       func(context.Context, time.Duration) error { return nil }, // no real waiting in the example
	})
	if err != nil {
		panic(err)
	}
	calls := 0
	v, err := r.Execute(context.Background(), func(context.Context) (int, error) {
		calls++
		if calls < 3 {
			return 0, errUnavailable
		}
		return 42, nil
	})
	fmt.Println(v, err, r.Stats().Retries)
	// Output:
	// attempt 1 failed, waiting 100ms
	// attempt 2 failed, waiting 200ms
	// 42 <nil> 2
}

// Guide: "Fault Tolerance → Failover" (automatic recovery).
// Exponential backoff with equal jitter: the delay doubles from one retry
// to the next.
func ExampleBackoff_Delay() {
	b := resilience.Backoff{Base: 5 * time.Millisecond, Max: 2 * time.Second, Jitter: resilience.JitterEqual}
	for retry := 1; retry <= 4; retry++ {
		// u = 0.5: the middle of the jitter range.
		fmt.Println(b.Delay(retry, 0, 0.5))
	}
	// Output:
	// 3.75ms
	// 7.5ms
	// 15ms
	// 30ms
}

// Guide: "Fault Tolerance → Circuit Breakers" (timeout configuration,
// fallback mechanisms).
// Fallback, retry, breaker, bulkhead and timeout in one pipeline: when
// every attempt fails, the fallback answers.
func ExamplePipeline() {
	fallback, _ := resilience.NewFallback(resilience.FallbackOptions[string]{Value: "cached page"})
	retry, _ := resilience.NewRetry[string](resilience.RetryOptions{Name: "render", MaxAttempts: 2, Backoff: resilience.Backoff{Base: time.Millisecond}})
	breaker, _ := resilience.NewCircuitBreaker[string](resilience.BreakerOptions{Name: "render"})
	bulkhead, _ := resilience.NewBulkhead(resilience.BulkheadOptions{Name: "render", MaxConcurrent: 10})
	timeout, _ := resilience.NewTimeout[string](resilience.TimeoutOptions{Name: "render", Timeout: time.Second})
	p, err := resilience.NewPipeline(fallback, retry, breaker, resilience.Guarded[string](bulkhead), timeout)
	if err != nil {
		panic(err)
	}
	page, err := p.Execute(context.Background(), func(context.Context) (string, error) { return "", errUnavailable })
	fmt.Println(page, err)
	fmt.Println("attempts:", retry.Stats().Attempts, "fallbacks:", fallback.Stats().Fallbacks)
	// Output:
	// cached page <nil>
	// attempts: 2 fallbacks: 1
}

// Guide: "Performance Considerations → Throughput Optimization →
// Microservices" (fault isolation).
// A slot is a value: defer its Release. Releasing it again, or releasing
// a copy, does nothing, so no code path can free a slot twice.
func ExampleBulkhead_Acquire() {
	pool, _ := resilience.NewBulkhead(resilience.BulkheadOptions{Name: "search", MaxConcurrent: 1})
	slot, err := pool.Acquire(context.Background())
	if err != nil {
		panic(err)
	}
	_, err = pool.Acquire(context.Background()) // no slot free, no queue: rejected at once
	fmt.Println(err)
	slot.Release()
	slot.Release() // already released: nothing happens
	fmt.Printf("%+v\n", pool.Stats())
	// Output:
	// resilience: bulkhead "search": bulkhead full
	// {InUse:0 Waiting:0 Capacity:1 Admitted:1 Rejected:1 Waited:0}
}

// Guide: "Performance Considerations → Throughput Optimization".
// A server at its concurrency limit sheds the next request with 503 and
// Retry-After.
func ExampleLoadShedder_Middleware() {
	shed, _ := resilience.NewLoadShedder(resilience.ShedderOptions{InitialLimit: 1, MaxLimit: 1})
	block := make(chan struct{})
	started := make(chan struct{})
	h := shed.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-block
	}))
	done := make(chan struct{})
	go func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)); close(done) }()
	<-started
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Retry-After"))
	close(block)
	<-done
	// Output: 503 1
}

// Guide: "Performance Considerations → Throughput Optimization".
// Client-side throttling: a backend that accepted 10 of the last 100
// requests makes the client reject most new ones itself.
func ExampleAdaptiveThrottle() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th, _ := resilience.NewAdaptiveThrottle(resilience.ThrottleOptions{K: 2, Now: func() time.Time { return now }})
	// The backend accepted 10 of the last 100 requests.
	for i := range 100 {
		th.AllowAt(now, 1)
		th.RecordAt(now, i < 10)
	}
	fmt.Printf("reject probability %.2f\n", th.Stats().RejectProbability)
	// Output: reject probability 0.79
}

// Guide: "Performance Considerations → Latency Optimization"; "Fault
// Tolerance → Redundancy".
// A hedged request: when the first replica is slow to answer, a second one
// is asked and the first answer wins.
func ExampleHedge() {
	h, _ := resilience.NewHedge[string](resilience.HedgeOptions{Delay: 10 * time.Millisecond})
	var sent atomic.Int32
	v, err := h.Execute(context.Background(), func(ctx context.Context) (string, error) {
		if sent.Add(1) == 1 { // the first request lands on a stuck replica
			<-ctx.Done() // cancelled once the hedge wins
			return "", ctx.Err()
		}
		return "answer from the hedge", nil
	})
	fmt.Println(v, err, h.Stats().HedgeWins)
	// Output: answer from the hedge <nil> 1
}

// Guide: "Fault Tolerance → Failover" (automatic recovery).
// The number of attempts has no default: a retry without it is a
// configuration error.
func ExampleNewRetry_maxAttemptsIsRequired() {
	// Retrying runs the call again, which is safe only if it is
	// idempotent: the number of attempts has no default.
	_, err := resilience.NewRetry[string](resilience.RetryOptions{Name: "charge card"})
	fmt.Println(errors.Is(err, resilience.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// resilience: invalid configuration: retry "charge card" MaxAttempts must be set to at least 1 (1 disables retries), got 0
}

// Guide: "Fault Tolerance → Failover" (automatic recovery).
// A retry budget caps retries at a share of recent requests; a ratio
// outside [0, 1] is an error.
func ExampleNewBudget() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Retries may add a tenth to the recent requests, with no floor.
	budget, err := resilience.NewBudget(resilience.BudgetOptions{Ratio: 0.1, MinPerWindow: -1})
	if err != nil {
		panic(err)
	}
	for range 50 {
		budget.RecordRequestAt(now)
	}
	granted := 0
	for range 20 {
		if budget.TryExtraAt(now) {
			granted++
		}
	}
	fmt.Println("retries granted for 50 requests:", granted)
	_, err = resilience.NewBudget(resilience.BudgetOptions{Ratio: 1.5})
	fmt.Println(err)
	// Output:
	// retries granted for 50 requests: 5
	// resilience: invalid configuration: budget Ratio must be set in (0, 1], got 1.5
}

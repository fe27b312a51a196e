package sharedbreaker_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/sharedbreaker"
)

// Guide: "Fault Tolerance → Circuit Breakers"; "Performance Considerations
// → Throughput Optimization → Microservices → Circuit Breakers".
// Two instances share one breaker state: failures one of them sees open the
// breaker for the other.
func ExampleBreaker() {
	// Two instances share one state; in production the store is a
	// redisbreaker.Store and the instances are separate processes.
	opts := sharedbreaker.Options{
		Store: sharedbreaker.NewMemoryStore(),
		Name:  "payments",
		Rules: sharedbreaker.Rules{MinRequests: 3, FailureRate: 0.5},
	}
	a, _ := sharedbreaker.New[int](opts)
	b, _ := sharedbreaker.New[int](opts)
	ctx := context.Background()
	for range 3 {
		_, _ = a.Execute(ctx, func(context.Context) (int, error) { return 0, errors.New("unavailable") })
	}
	_, err := b.Execute(ctx, func(context.Context) (int, error) { return 1, nil })
	fmt.Println(b.State(ctx), errors.Is(err, resilience.ErrOpen))
	// Output: open true
}

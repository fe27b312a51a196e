package redisbreaker_test

import (
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/redisbreaker"
	"github.com/sysdesign-go/sysdesign/resilience/sharedbreaker"
)

// Every instance of a service builds its breaker on the same Redis store
// and the same rules; when one instance sees the dependency fail, all of
// them stop calling it. The breaker name is the Redis Cluster hash tag of
// the breaker's keys, so a prefix with braces of its own is refused.
//
// Guide: "Fault Tolerance → Circuit Breakers"; "Performance Considerations
// → Throughput Optimization → Microservices → Circuit Breakers".
func ExampleNewStore() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer client.Close()

	_, err := redisbreaker.NewStore(client, "{payments}:")
	fmt.Println(errors.Is(err, resilience.ErrInvalidConfig))

	store, err := redisbreaker.NewStore(client, "breakers:")
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = sharedbreaker.New[int](sharedbreaker.Options{
		Store: store,
		Name:  "payments",
		Rules: sharedbreaker.Rules{MinRequests: 20, FailureRate: 0.5},
	})
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}

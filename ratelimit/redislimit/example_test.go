package redislimit_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/ratelimit"
	"github.com/sysdesign-go/sysdesign/ratelimit/redislimit"
)

// One limit per user shared by every instance of an API: 100 requests a
// minute with bursts of 20, kept in Redis under "api:". Each user's state
// is one key whose hash tag is the user, so on Redis Cluster the users
// spread over the slots. The limiter plugs into [ratelimit.Middleware]
// like an in-memory one.
// Nothing here talks to Redis yet: the first decision does.
//
// Guide: "Security Considerations → Rate Limiting" (user-based limiting);
// "Performance & Scalability → API Design" (rate limiting).
func ExampleNew() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()

	lim, err := redislimit.New(client, ratelimit.AlgGCRA,
		redislimit.Options{Prefix: "api:", OnFailure: redislimit.FailOpen},
		ratelimit.Limit{Events: 100, Per: time.Minute, Burst: 20})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(lim.Key("alice"))

	mw, err := ratelimit.NewMiddleware(ratelimit.MiddlewareOptions{
		Limiter: lim,
		Key:     func(r *http.Request) (string, error) { return r.Header.Get("X-User"), nil },
	})
	fmt.Println(err)
	mux := http.NewServeMux()
	mux.Handle("/api/", mw.Handler(http.NotFoundHandler()))
	// Output:
	// api:{alice}
	// <nil>
}

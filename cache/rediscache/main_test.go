package rediscache

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// TestMain checks for goroutine leaks, and skips the examples when no
// Redis answers and none is required: they print what a real server
// answers, and an example cannot skip itself. (The tests skip, or fail
// where Redis is required, through redistest.)
func TestMain(m *testing.M) {
	flag.Parse()
	if !redistest.Required() && !redisAnswers(redistest.Addr()) {
		fmt.Fprintf(os.Stderr, "rediscache: examples skipped: no Redis at %s: %s\n", redistest.Addr(), redistest.Howto)
		skip := "^Example"
		if old := flag.Lookup("test.skip").Value.String(); old != "" {
			skip = old + "|" + skip
		}
		_ = flag.Set("test.skip", skip)
	}
	goleak.VerifyTestMain(m)
}

func redisAnswers(addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err() == nil
}

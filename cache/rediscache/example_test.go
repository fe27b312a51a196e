package rediscache_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/cache/rediscache"
)

// The examples talk to the Redis at REDIS_ADDR (default 127.0.0.1:6379),
// each under a prefix of its own, which it deletes at the end; without a
// Redis they are skipped (see TestMain).
func redisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// uniquePrefix keeps runs that share the server apart.
func uniquePrefix(name string) string { return "example:" + name + ":" + rand.Text()[:8] + ":" }

// The L2 of "Database Design → Caching Strategies": a distributed cache
// shared by every instance, with per-entry TTL, batches and invalidation
// of a group of keys by prefix.
func ExampleNew() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: redisAddr()}) // or a Sentinel or Cluster client
	defer client.Close()
	users, err := rediscache.New[string](client, rediscache.Options{Prefix: uniquePrefix("users"), DefaultTTL: time.Hour})
	if err != nil {
		panic(err)
	}
	defer users.DeletePrefix(ctx, "")

	_ = users.Set(ctx, "user:1:name", "Ada", 0)
	_ = users.SetMany(ctx, map[string]string{"user:1:email": "ada@example.com", "user:2:name": "Grace"}, 0)
	v, _, ok, _ := users.Get(ctx, "user:1:name")
	fmt.Println(v, ok)

	n, _ := users.DeletePrefix(ctx, "user:1:") // everything about user 1
	fmt.Println("deleted", n)
	left, _ := users.GetMany(ctx, []string{"user:1:name", "user:1:email", "user:2:name"})
	fmt.Println(left)

	_, err = rediscache.New[string](nil, rediscache.Options{})
	fmt.Println(err)
	// Output:
	// Ada true
	// deleted 2
	// map[user:2:name:Grace]
	// cache: invalid configuration: nil Redis client
}

// The multi-level cache of "Database Design → Caching Strategies" (L1 in
// process, L2 in Redis) and its event-driven invalidation, which also
// serves "Performance Considerations → Latency Optimization → Caching":
// two instances share an L2, and a write in one drops the key from the
// other's L1 through Redis pub/sub.
func ExampleNewMultiLevel() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: redisAddr()})
	defer client.Close()
	prefix := uniquePrefix("multilevel")

	dropped := make(chan string, 10)
	instance := func(onInvalidate func(string, bool)) (*rediscache.MultiLevel[string], error) {
		l1, err := cache.NewMemory(10_000, cache.MemoryOptions[string, string]{})
		if err != nil {
			return nil, err
		}
		l2, err := rediscache.New[string](client, rediscache.Options{Prefix: prefix, Timeout: 50 * time.Millisecond})
		if err != nil {
			return nil, err
		}
		return rediscache.NewMultiLevel(ctx, l1, l2, rediscache.MultiLevelOptions{
			Channel: prefix + "invalidate", L1TTL: time.Minute, OnInvalidate: onInvalidate,
		})
	}
	a, err := instance(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close(ctx)
	b, err := instance(func(key string, _ bool) { dropped <- key })
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close(ctx)
	defer a.DeletePrefix(ctx, "")

	_ = a.Set(ctx, "user:42", "Ada", time.Hour)
	<-dropped // b is told, though it has nothing to drop yet
	// From L2; now in b's L1 too.
	v, _, _, _ := b.Get(ctx, "user:42")
	fmt.Println("b reads", v)

	_ = a.Set(ctx, "user:42", "Ada Lovelace", time.Hour)
	fmt.Println("b drops", <-dropped)
	v, _, _, _ = b.Get(ctx, "user:42")
	fmt.Println("b reads", v)
	st := b.Stats()
	fmt.Println("b: L2 hits", st.L2Hits, "invalidations", st.Invalidations)
	// Output:
	// b reads Ada
	// b drops user:42
	// b reads Ada Lovelace
	// b: L2 hits 2 invalidations 2
}

// Cache-aside ("Database Design → Caching Strategies": check the cache,
// load on a miss, store the result) over the multi-level cache: the
// second instance is served from the shared L2 without asking the
// database.
func ExampleMultiLevel_aside() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: redisAddr()})
	defer client.Close()
	prefix := uniquePrefix("aside")
	var queries []string
	load := func(_ context.Context, id string) (string, error) {
		queries = append(queries, id)
		return "Ada", nil // the database query
	}
	for _, instance := range []string{"a", "b"} {
		l1, _ := cache.NewMemory(10_000, cache.MemoryOptions[string, string]{})
		l2, _ := rediscache.New[string](client, rediscache.Options{Prefix: prefix})
		ml, err := rediscache.NewMultiLevel(ctx, l1, l2, rediscache.MultiLevelOptions{})
		if err != nil {
			fmt.Println(err)
			return
		}
		users, _ := cache.NewAside[string, string](ml, cache.AsideOptions{TTL: time.Hour})
		name, err := users.Get(ctx, "user:42", load)
		st := ml.Stats()
		fmt.Println(instance, name, err, "L1 hits", st.L1Hits, "L2 hits", st.L2Hits)
		if instance == "b" {
			_, _ = ml.DeletePrefix(ctx, "")
		}
		_ = ml.Close(ctx)
	}
	sort.Strings(queries)
	fmt.Println("database queries", queries)
	// Output:
	// a Ada <nil> L1 hits 0 L2 hits 0
	// b Ada <nil> L1 hits 0 L2 hits 1
	// database queries [user:42]
}

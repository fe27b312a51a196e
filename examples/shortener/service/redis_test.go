package service

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/internal/tcpproxy"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// redisVia returns a client reaching the test's Redis through a proxy the
// test can cut.
func redisVia(t *testing.T) (*redistest.DB, *tcpproxy.Proxy, *redis.Client) {
	db := redistest.New(t)
	p, err := tcpproxy.New(db.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	return db, p, rdb
}

// With Redis cut mid-run, the breaker opens and every redirect keeps
// working: cached codes from L1, others from the store. When Redis is back
// the breaker closes again.
func TestRedisOutageKeepsRedirecting(t *testing.T) {
	db, proxy, rdb := redisVia(t)
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Instances: 2, Service: Config{
		Redis: rdb, RedisPrefix: db.Prefix, RedisTimeout: 50 * time.Millisecond, BreakerOpen: 200 * time.Millisecond,
	}})
	defer stop(t, c)
	a, b := newClient(t, c.InstanceURLs[0]), newClient(t, c.InstanceURLs[1])
	var codes []string
	for i := range 5 {
		codes = append(codes, a.mustCreate(fmt.Sprintf("https://example.com/%d", i)).Code)
	}
	// Instance b reads the first code from the shared L2, not the store.
	require.Equal(t, http.StatusFound, b.do("GET", "/"+codes[0], "", nil).status)
	assert.Equal(t, uint64(1), c.Instances[1].Stats().L2Hits)
	assert.True(t, c.Instances[1].Stats().RedisEnabled)

	proxy.Cut()
	for round := range 5 {
		for _, code := range codes {
			assert.Equal(t, http.StatusFound, a.do("GET", "/"+code, "", nil).status, "cached on a, round %d", round)
			assert.Equal(t, http.StatusFound, b.do("GET", "/"+code, "", nil).status, "from the store on b, round %d", round)
		}
	}
	st := c.Instances[1].Stats()
	assert.Equal(t, resilience.StateOpen, st.Breaker, "three L2 failures open the breaker")
	assert.GreaterOrEqual(t, st.L2Errors, uint64(3))
	m := b.do("GET", "/metrics", "", nil)
	assert.Contains(t, string(m.body), "shortener_redis_breaker_state 2")
	// Creation still works (the global limit is skipped, the local holds).
	a.mustCreate("https://example.com/during-outage")

	proxy.Restore()
	require.Eventually(t, func() bool {
		b.do("GET", "/"+codes[4], "", nil) // misses L1 on b only until cached; probes when half-open
		c.Instances[1].cache.l1.Delete(codes[4])
		return c.Instances[1].Stats().Breaker == resilience.StateClosed
	}, 5*time.Second, 50*time.Millisecond, "the breaker closes once Redis answers")
}

// A delete on one instance evicts the code from every instance's L1
// through the Redis invalidation channel.
func TestDeleteInvalidatesEveryInstance(t *testing.T) {
	db, _, rdb := redisVia(t)
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Instances: 2, Service: Config{Redis: rdb, RedisPrefix: db.Prefix, AdminToken: "tok"}})
	defer stop(t, c)
	a, b := newClient(t, c.InstanceURLs[0]), newClient(t, c.InstanceURLs[1])
	code := a.mustCreate("https://example.com/gone-soon").Code
	require.Equal(t, http.StatusFound, a.do("GET", "/"+code, "", nil).status)
	require.Equal(t, http.StatusFound, b.do("GET", "/"+code, "", nil).status)
	_, ok := c.Instances[1].cache.l1.Get(code)
	require.True(t, ok, "b caches the code in its L1")

	assert.Equal(t, http.StatusForbidden, a.do("DELETE", "/api/v1/urls/"+code, "", nil, "Authorization", "Bearer wrong").status)
	require.Equal(t, http.StatusNoContent, a.do("DELETE", "/api/v1/urls/"+code, "", nil, "Authorization", "Bearer tok").status)
	assert.Equal(t, http.StatusNotFound, a.do("GET", "/"+code, "", nil).status)
	require.Eventually(t, func() bool {
		_, ok := c.Instances[1].cache.l1.Get(code)
		return !ok
	}, 2*time.Second, 10*time.Millisecond, "b's L1 drops the code")
	assert.Equal(t, http.StatusNotFound, b.do("GET", "/"+code, "", nil).status)
}

// With Redis, the creation limit is global: two instances share it.
func TestGlobalRateLimitThroughRedis(t *testing.T) {
	db, _, rdb := redisVia(t)
	c := start(t, ClusterConfig{DataDir: t.TempDir(), Instances: 2, Service: Config{
		Redis: rdb, RedisPrefix: db.Prefix, CreateLimit: limitPerHour(3),
	}})
	defer stop(t, c)
	a, b := newClient(t, c.InstanceURLs[0]), newClient(t, c.InstanceURLs[1])
	statuses := []int{}
	for i := range 4 {
		cl := a
		if i%2 == 1 {
			cl = b
		}
		statuses = append(statuses, cl.create(fmt.Sprintf(`{"url":"https://example.com/%d"}`, i)).status)
	}
	assert.Equal(t, []int{201, 201, 201, 429}, statuses, "each instance alone would allow 3")
}

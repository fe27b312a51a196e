package service

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// instances starts n services over one storage, each behind its own
// test server, on no shared [Bus]: only Redis connects their caches, as
// it connects processes.
func instances(t *testing.T, n int, cfg Config) ([]*Service, []*client) {
	t.Helper()
	storage, err := OpenStorage(t.TempDir(), StorageOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = storage.Close() })
	var svcs []*Service
	var cls []*client
	for range n {
		s, err := New(context.Background(), storage, cfg)
		require.NoError(t, err)
		srv := httptest.NewServer(s.Handler())
		t.Cleanup(func() { _ = s.Close(context.Background()) }) // after the server: cleanups run last first
		t.Cleanup(srv.Close)
		svcs, cls = append(svcs, s), append(cls, newClient(t, srv.URL))
	}
	return svcs, cls
}

// A delete on one instance evicts the code from every instance's L1
// through the Redis invalidation channel.
func TestDeleteInvalidatesEveryInstance(t *testing.T) {
	db, _, rdb := redisVia(t)
	svcs, cls := instances(t, 2, Config{Redis: rdb, RedisPrefix: db.Prefix, Tokens: testTokens})
	a, b := cls[0], cls[1]
	code := a.mustCreate("https://example.com/gone-soon").Code
	require.Equal(t, http.StatusFound, a.do("GET", "/"+code, "", nil).status)
	require.Equal(t, http.StatusFound, b.do("GET", "/"+code, "", nil).status)
	_, ok := svcs[1].cache.l1.Get(code)
	require.True(t, ok, "b caches the code in its L1")

	assert.Equal(t, http.StatusUnauthorized, a.do("DELETE", "/api/v1/urls/"+code, "", nil, "Authorization", "Bearer wrong").status)
	require.Equal(t, http.StatusNoContent, a.do("DELETE", "/api/v1/urls/"+code, "", nil, "Authorization", "Bearer "+adminToken(t)).status)
	assert.Equal(t, http.StatusNotFound, a.do("GET", "/"+code, "", nil).status)
	require.Eventually(t, func() bool {
		_, ok := svcs[1].cache.l1.Get(code)
		return !ok
	}, 2*time.Second, 10*time.Millisecond, "b's L1 drops the code")
	assert.Equal(t, http.StatusNotFound, b.do("GET", "/"+code, "", nil).status)
}

// cmdCounter counts the commands a Redis client sends, by name.
type cmdCounter struct {
	mu sync.Mutex
	n  map[string]int // guarded by mu
}

func (c *cmdCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

func (c *cmdCounter) add(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	for _, cmd := range cmds {
		if name := cmd.Name(); name != "hello" && name != "client" { // connection setup
			c.n[name]++
		}
	}
}

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.add(cmd); return next(ctx, cmd) }
}

func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.add(cmds...); return next(ctx, cmds) }
}

// The Redis traffic of each request kind, counted: a redirect served from
// L1 sends nothing; an L1 miss reads L2 once (and writes it once more when
// L2 misses too); creating warms L2 with one write besides the global
// limit's script; filling the cache never publishes an invalidation, so
// it never evicts the code from another instance's L1; only a delete
// does.
func TestRedisTrafficPerRequest(t *testing.T) {
	db := redistest.New(t)
	rdb := redis.NewClient(&redis.Options{Addr: db.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	var cmds cmdCounter
	rdb.AddHook(&cmds)
	svcs, cls := instances(t, 2, Config{Redis: rdb, RedisPrefix: db.Prefix, Tokens: testTokens})
	a, b := cls[0], cls[1]
	require.True(t, svcs[0].Stats().RedisEnabled)

	// Warm-up: load the Lua scripts (a first run may add an EVAL after
	// NOSCRIPT) and the connections.
	warm := a.mustCreate("https://example.com/warm-up").Code
	require.Equal(t, http.StatusFound, b.do("GET", "/"+warm, "", nil).status)

	cmds.take()
	l1a, l2b := svcs[0].Stats().L1Hits, svcs[1].Stats().L2Hits
	code := a.mustCreate("https://example.com/hot").Code
	assert.Equal(t, map[string]int{"evalsha": 1, "set": 1}, cmds.take(), "create: the global limit's script and the L2 warm-up")

	for range 50 {
		require.Equal(t, http.StatusFound, a.do("GET", "/"+code, "", nil).status)
	}
	assert.Empty(t, cmds.take(), "redirects served from L1 do no Redis I/O")
	assert.Equal(t, l1a+50, svcs[0].Stats().L1Hits)

	require.Equal(t, http.StatusFound, b.do("GET", "/"+code, "", nil).status)
	assert.Equal(t, map[string]int{"evalsha": 1}, cmds.take(), "an L1 miss reads L2 once")
	assert.Equal(t, l2b+1, svcs[1].Stats().L2Hits)

	// An L2 miss too: one store read, then L1 and L2 are filled, and
	// nothing is published.
	require.NoError(t, svcs[0].cache.l2.Delete(context.Background(), code))
	svcs[1].cache.l1.Delete(code)
	cmds.take()
	require.Equal(t, http.StatusFound, b.do("GET", "/"+code, "", nil).status)
	assert.Equal(t, map[string]int{"evalsha": 1, "set": 1}, cmds.take(), "a full miss reads L2, then fills it")
	_, ok := svcs[0].cache.l1.Get(code)
	assert.True(t, ok, "a fill on b leaves a's L1 alone")
	for range 10 {
		require.Equal(t, http.StatusFound, b.do("GET", "/"+code, "", nil).status)
	}
	assert.Empty(t, cmds.take())

	require.Equal(t, http.StatusNoContent, a.do("DELETE", "/api/v1/urls/"+code, "", nil, "Authorization", "Bearer "+adminToken(t)).status)
	assert.Equal(t, map[string]int{"unlink": 1, "publish": 1}, cmds.take(), "a delete removes the L2 entry and tells the other processes")
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

// Two deployments on one Redis, with the same key prefix, never serve each
// other's links; nor does a deployment whose data directory was deleted
// serve the links cached for its predecessor.
func TestDeploymentsOnOneRedisStayApart(t *testing.T) {
	db := redistest.New(t)
	rdb := redis.NewClient(&redis.Options{Addr: db.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := ClusterConfig{Service: Config{Redis: rdb, RedisPrefix: db.Prefix}}
	dirA, dirB := t.TempDir(), t.TempDir()
	cfg.DataDir = dirA
	a := start(t, cfg)
	cfg.DataDir = dirB
	b := start(t, cfg)
	ca, cb := newClient(t, a.URL()), newClient(t, b.URL())
	require.True(t, a.Instances[0].Stats().RedisEnabled)
	require.NotEqual(t, a.Storage().ID(), b.Storage().ID())

	x := ca.mustCreate("https://a.example/")
	assert.Equal(t, http.StatusNotFound, cb.do("GET", "/"+x.Code, "", nil).status, "b never stored %s", x.Code)
	y := cb.mustCreate("https://b.example/")
	require.Equal(t, x.Code, y.Code, "both counters start at the same ID")
	stop(t, a) // a's L1 goes; what it reads next comes from L2 or its store
	cfg.DataDir = dirA
	a = start(t, cfg)
	defer stop(t, a)
	ca = newClient(t, a.URL())
	assert.Equal(t, "https://a.example/", ca.do("GET", "/"+x.Code, "", nil).header.Get("Location"), "b's link under the same code does not replace a's")
	assert.Equal(t, "https://b.example/", cb.do("GET", "/"+y.Code, "", nil).header.Get("Location"))

	// b's data directory is deleted and b starts again from nothing.
	stop(t, b)
	require.NoError(t, os.RemoveAll(dirB))
	cfg.DataDir = dirB
	b = start(t, cfg)
	defer stop(t, b)
	cb = newClient(t, b.URL())
	assert.Equal(t, http.StatusNotFound, cb.do("GET", "/"+y.Code, "", nil).status, "the new b has no links yet")

	// An explicit namespace is shared on purpose: two stores, one cache.
	cfg.Service.Namespace = "shared"
	cfg.DataDir = t.TempDir()
	c := start(t, cfg)
	defer stop(t, c)
	cfg.DataDir = t.TempDir()
	d := start(t, cfg)
	defer stop(t, d)
	z := newClient(t, c.URL()).mustCreate("https://c.example/")
	assert.Equal(t, "https://c.example/", newClient(t, d.URL()).do("GET", "/"+z.Code, "", nil).header.Get("Location"), "d reads c's link from the shared L2")
	n, err := rdb.Exists(context.Background(), db.Prefix+"shared:url:"+z.Code).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "keys live under RedisPrefix + Namespace + \":\"")
}

// A data directory keeps its ID across restarts; bad namespaces are
// refused.
func TestNamespaceConfig(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStorage(dir, StorageOptions{})
	require.NoError(t, err)
	id := s.ID()
	require.NoError(t, s.Close())
	s, err = OpenStorage(dir, StorageOptions{})
	require.NoError(t, err)
	assert.Equal(t, id, s.ID())
	assert.Len(t, id, 16)
	// Openers racing on a new directory all get the one ID that lands.
	fresh := t.TempDir()
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			var err error
			ids[i], err = storageID(fresh)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	for _, got := range ids {
		assert.Equal(t, ids[0], got)
	}
	left, err := filepath.Glob(filepath.Join(fresh, "ID.tmp*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary file is left behind")
	for _, bad := range []string{"a b", "ns:x", "{tag}", strings.Repeat("n", 65)} {
		_, err := New(context.Background(), s, Config{Namespace: bad})
		require.ErrorIs(t, err, ErrInvalidConfig, bad)
	}
	require.NoError(t, s.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ID"), []byte("not an id\n"), 0o600))
	_, err = OpenStorage(dir, StorageOptions{})
	require.ErrorIs(t, err, ErrStorage)
	assert.ErrorContains(t, err, "not an id")
}

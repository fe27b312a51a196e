package redistest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTB records what New decided instead of stopping the test.
type fakeTB struct {
	name            string
	skipped, failed string
	cleanups        []func()
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Name() string                      { return f.name }
func (f *fakeTB) Cleanup(fn func())                 { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Skipf(format string, args ...any)  { f.skipped = fmt.Sprintf(format, args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }
func (f *fakeTB) Logf(string, ...any)               {}
func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// deadAddr returns a loopback address with nothing listening.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestUnreachableRedisSkipsWithHowto(t *testing.T) {
	f := &fakeTB{name: "TestX"}
	db := newDB(f, deadAddr(t), false)
	assert.Nil(t, db)
	assert.Empty(t, f.failed)
	assert.Contains(t, f.skipped, "no Redis at 127.0.0.1:")
	assert.Contains(t, f.skipped, "redis-server")
}

func TestUnreachableRedisFailsWhenRequired(t *testing.T) {
	f := &fakeTB{name: "TestX"}
	db := newDB(f, deadAddr(t), true)
	assert.Nil(t, db)
	assert.Empty(t, f.skipped)
	assert.Contains(t, f.failed, "SYSDESIGN_REQUIRE_REDIS")
}

func TestRequiredReadsEnvironment(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("SYSDESIGN_REQUIRE_REDIS", "")
	assert.False(t, Required())
	t.Setenv("SYSDESIGN_REQUIRE_REDIS", "1")
	assert.True(t, Required())
	t.Setenv("SYSDESIGN_REQUIRE_REDIS", "false")
	t.Setenv("CI", "true")
	assert.True(t, Required())
}

func TestAddrDefault(t *testing.T) {
	t.Setenv("REDIS_ADDR", "")
	assert.Equal(t, DefaultAddr, Addr())
	t.Setenv("REDIS_ADDR", "127.0.0.1:7000")
	assert.Equal(t, "127.0.0.1:7000", Addr())
}

func TestPrefixIsUniqueAndBraceFree(t *testing.T) {
	a, b := prefixFor("TestA/sub{x}*"), prefixFor("TestA/sub{x}*")
	assert.NotEqual(t, a, b)
	for _, p := range []string{a, b} {
		assert.True(t, strings.HasPrefix(p, "sysdesign-test:TestA_sub_x_"), p)
		assert.NotContains(t, p, "{")
		assert.NotContains(t, p, "*")
	}
}

func TestIsolationAndCleanup(t *testing.T) {
	outer := New(t)
	ctx := context.Background()
	f := &fakeTB{name: t.Name() + "/inner"}
	inner := newDB(f, outer.Addr, true)
	require.NotNil(t, inner, f.failed)
	require.NotEqual(t, outer.Prefix, inner.Prefix)

	for i := range 1200 { // more than one SCAN page
		require.NoError(t, inner.Client.Set(ctx, inner.Key(fmt.Sprint("k", i)), i, 0).Err())
	}
	require.NoError(t, outer.Client.Set(ctx, outer.Key("mine"), "v", 0).Err())

	f.runCleanups()
	n, err := outer.Client.Exists(ctx, inner.Key("k0"), inner.Key("k1199")).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the inner test's keys are gone after its cleanup")
	v, err := outer.Client.Get(ctx, outer.Key("mine")).Result()
	require.NoError(t, err)
	assert.Equal(t, "v", v, "another test's keys survive")
	assert.Error(t, inner.Client.Ping(ctx).Err(), "the inner client is closed")
}

func TestPurgeRefusesEmptyPrefix(t *testing.T) {
	db := New(t)
	assert.Error(t, Purge(context.Background(), db.Client, ""))
}

func TestPurgeEscapesGlob(t *testing.T) {
	db := New(t)
	ctx := context.Background()
	require.NoError(t, db.Client.Set(ctx, db.Key("a*b"), 1, 0).Err())
	require.NoError(t, db.Client.Set(ctx, db.Key("axb"), 1, 0).Err())
	require.NoError(t, Purge(ctx, db.Client, db.Key("a*")))
	assert.EqualValues(t, 0, db.Client.Exists(ctx, db.Key("a*b")).Val())
	assert.EqualValues(t, 1, db.Client.Exists(ctx, db.Key("axb")).Val(), "the * in the prefix is literal")
}

func TestUnreachableClusterSkipsWithHowto(t *testing.T) {
	f := &fakeTB{name: "TestX"}
	db := newClusterDB(f, []string{deadAddr(t)}, false)
	assert.Nil(t, db)
	assert.Empty(t, f.failed)
	assert.Contains(t, f.skipped, "no Redis Cluster at 127.0.0.1:")
	assert.Contains(t, f.skipped, "scripts/redis-cluster")
}

func TestUnreachableClusterFailsWhenRequired(t *testing.T) {
	f := &fakeTB{name: "TestX"}
	db := newClusterDB(f, []string{deadAddr(t)}, true)
	assert.Nil(t, db)
	assert.Empty(t, f.skipped)
	assert.Contains(t, f.failed, "SYSDESIGN_REQUIRE_REDIS")
}

func TestSingleNodeIsNotACluster(t *testing.T) {
	single := New(t)
	f := &fakeTB{name: "TestX"}
	db := newClusterDB(f, []string{single.Addr}, true)
	assert.Nil(t, db, "a server without cluster mode is refused")
	assert.Contains(t, f.failed, "no Redis Cluster")
}

func TestClusterAddrsDefault(t *testing.T) {
	t.Setenv("REDIS_CLUSTER_ADDRS", "")
	assert.Equal(t, strings.Split(DefaultClusterAddrs, ","), ClusterAddrs())
	t.Setenv("REDIS_CLUSTER_ADDRS", " 127.0.0.1:1, 127.0.0.1:2 ,")
	assert.Equal(t, []string{"127.0.0.1:1", "127.0.0.1:2"}, ClusterAddrs())
}

// TestClusterPurgeEveryMaster puts keys in every slot range and checks that
// the cleanup finds them on every master, one key per slot at a time.
func TestClusterPurgeEveryMaster(t *testing.T) {
	outer := NewCluster(t)
	ctx := context.Background()
	f := &fakeTB{name: t.Name() + "/inner"}
	inner := newClusterDB(f, outer.Addrs, true)
	require.NotNil(t, inner, f.failed)
	cc := inner.Client.(*redis.ClusterClient)

	for i := range 600 {
		require.NoError(t, inner.Client.Set(ctx, inner.Key(fmt.Sprint("k", i)), i, 0).Err())
	}
	require.NoError(t, outer.Client.Set(ctx, outer.Key("mine"), "v", 0).Err())
	var masters atomic.Int64 // ForEachMaster calls its function concurrently
	require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		if n > 0 {
			masters.Add(1)
		}
		return err
	}))
	require.GreaterOrEqual(t, masters.Load(), int64(2), "the keys span several masters")

	f.runCleanups()
	var left atomic.Int64
	require.NoError(t, outer.Client.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, _, err := m.Scan(ctx, 0, escapeGlob(inner.Prefix)+"*", 1000).Result()
		left.Add(int64(len(keys)))
		return err
	}))
	assert.Zero(t, left.Load(), "the inner test's keys are gone from every master")
	v, err := outer.Client.Get(ctx, outer.Key("mine")).Result()
	require.NoError(t, err)
	assert.Equal(t, "v", v, "another test's keys survive")
}

func TestEachRunsBothTopologies(t *testing.T) {
	var seen []string
	Each(t, func(t *testing.T, db *DB) {
		seen = append(seen, db.Topology())
		require.NoError(t, db.Client.Set(context.Background(), db.Key("x"), 1, 0).Err())
		_, isCluster := db.NewClient(t).(*redis.ClusterClient)
		assert.Equal(t, db.Cluster, isCluster)
	})
	assert.Equal(t, []string{"single", "cluster"}, seen)
}

package redistest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

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

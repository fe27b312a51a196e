package shard

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// storeKinds builds fresh stores of each implementation; every store test
// runs over all of them.
var storeKinds = []struct {
	name string
	new  func(t *testing.T) func(shard string) Store
}{
	{"mem", func(t *testing.T) func(string) Store {
		return func(string) Store { return &MemStore{} }
	}},
	{"redis", func(t *testing.T) func(string) Store {
		db := redistest.New(t)
		return func(shard string) Store {
			s, err := NewRedisStore(db.Client, db.Key(shard+":"), RedisOptions{})
			require.NoError(t, err)
			return s
		}
	}},
}

func TestStore_Contract(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			s := kind.new(t)("s1")
			ctx := context.Background()
			_, err := s.Get(ctx, "missing")
			assert.ErrorIs(t, err, ErrNotFound)
			require.NoError(t, s.Delete(ctx, "missing"), "deleting an absent key is not an error")
			for _, k := range []string{"b", "a", "c", "ab", "d\x00x"} {
				require.NoError(t, s.Put(ctx, k, []byte("v-"+k)))
			}
			require.NoError(t, s.Put(ctx, "b", []byte("v2")))
			v, err := s.Get(ctx, "b")
			require.NoError(t, err)
			assert.Equal(t, "v2", string(v))

			all, err := s.Scan(ctx, "", "", 0)
			require.NoError(t, err)
			assert.Equal(t, []string{"a", "ab", "b", "c", "d\x00x"}, keysOf(all))
			part, err := s.Scan(ctx, "ab", "c", 0)
			require.NoError(t, err)
			assert.Equal(t, []string{"ab", "b"}, keysOf(part))
			assert.Equal(t, "v2", string(part[1].Value))
			lim, err := s.Scan(ctx, "a\x00", "", 2)
			require.NoError(t, err)
			assert.Equal(t, []string{"ab", "b"}, keysOf(lim))

			require.NoError(t, s.Delete(ctx, "b"))
			_, err = s.Get(ctx, "b")
			assert.ErrorIs(t, err, ErrNotFound)
			all, err = s.Scan(ctx, "", "", 0)
			require.NoError(t, err)
			assert.Equal(t, []string{"a", "ab", "c", "d\x00x"}, keysOf(all))

			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			assert.Error(t, s.Put(cancelled, "x", nil), "a cancelled context stops the call")
		})
	}
}

func keysOf(kvs []KV) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

func TestMemStore_DelayAndFault(t *testing.T) {
	var s MemStore
	boom := errors.New("boom")
	s.SetFault(boom)
	assert.ErrorIs(t, s.Put(context.Background(), "k", nil), boom)
	s.SetFault(nil)
	s.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := s.Get(ctx, "k")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestRedis_BadInput(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	_, err := NewRedisStore(nil, "p:", RedisOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewRedisStore(c, "", RedisOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewRedisDirectory(c, "p:", RedisOptions{Timeout: -time.Second})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cc.Close()
	_, err = NewRedisCheckpoint(cc, "no-tag:", RedisOptions{})
	assert.ErrorIs(t, err, ErrInvalidConfig, "a Cluster prefix needs a hash tag")
	_, err = NewRedisCheckpoint(cc, "app:{s1}:", RedisOptions{})
	assert.NoError(t, err)
}

func TestRedisDirectory_WithCache(t *testing.T) {
	db := redistest.New(t)
	ctx := context.Background()
	dir, err := NewRedisDirectory(db.Client, db.Prefix, RedisOptions{})
	require.NoError(t, err)
	_, err = dir.LookupShard(ctx, "tenant:1")
	assert.ErrorIs(t, err, ErrNoShardForKey)
	require.NoError(t, dir.Assign(ctx, "tenant:1", "b"))
	c, err := NewCachedDirectory(dir, abc, CachedDirectoryOptions{})
	require.NoError(t, err)
	for range 3 {
		i, err := c.Lookup(ctx, "tenant:1")
		require.NoError(t, err)
		assert.Equal(t, 1, i)
	}
	assert.Equal(t, uint64(2), c.Stats().Hits)

	// Moving the tenant is one write plus an invalidation.
	require.NoError(t, dir.Assign(ctx, "tenant:1", "c"))
	c.Invalidate("tenant:1")
	i, err := c.Lookup(ctx, "tenant:1")
	require.NoError(t, err)
	assert.Equal(t, 2, i)
}

// Every Checkpoint implementation keeps the last saved key per shard.
func TestCheckpoint_Contract(t *testing.T) {
	for _, kind := range []struct {
		name string
		new  func(t *testing.T) Checkpoint
	}{
		{"mem", func(*testing.T) Checkpoint { return &MemCheckpoint{} }},
		{"redis", func(t *testing.T) Checkpoint {
			db := redistest.New(t)
			cp, err := NewRedisCheckpoint(db.Client, db.Prefix, RedisOptions{})
			require.NoError(t, err)
			return cp
		}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			cp := kind.new(t)
			ctx := context.Background()
			_, ok, err := cp.Load(ctx, "s1")
			require.NoError(t, err)
			assert.False(t, ok)
			require.NoError(t, cp.Save(ctx, "s1", "key:41"))
			require.NoError(t, cp.Save(ctx, "s1", "key:42"))
			require.NoError(t, cp.Save(ctx, "s2", ""))
			k, ok, err := cp.Load(ctx, "s1")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, "key:42", k)
			k, ok, err = cp.Load(ctx, "s2")
			require.NoError(t, err)
			assert.True(t, ok, "an empty key is a saved checkpoint")
			assert.Empty(t, k)
		})
	}
}

// fill puts n keys through r.
func fill(t *testing.T, put func(ctx context.Context, k string, v []byte) error, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, put(context.Background(), fmt.Sprintf("k%05d", i), []byte(fmt.Sprint(i))))
	}
}

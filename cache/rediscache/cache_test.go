package rediscache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/cache"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

type user struct {
	Name string `json:"name"`
	Age  int    `json:"age"`
}

func TestCache(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		r, err := New[user](db.Client, Options{Prefix: db.Prefix, DefaultTTL: time.Minute})
		require.NoError(t, err)

		_, _, ok, err := r.Get(ctx, "u1")
		require.NoError(t, err)
		assert.False(t, ok)
		require.NoError(t, r.Set(ctx, "u1", user{"ada", 36}, 0))
		got, ttl, ok, err := r.Get(ctx, "u1")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, user{"ada", 36}, got)
		assert.InDelta(t, float64(time.Minute), float64(ttl), float64(time.Second), "default TTL applied")
		raw, err := db.Client.Get(ctx, db.Key("u1")).Result()
		require.NoError(t, err)
		assert.JSONEq(t, `{"name":"ada","age":36}`, raw, "JSON under the prefixed key")

		require.NoError(t, r.SetMany(ctx, map[string]user{"u2": {"bob", 1}, "u3": {"cy", 2}}, time.Hour))
		many, err := r.GetMany(ctx, []string{"u1", "u2", "u3", "nope"})
		require.NoError(t, err)
		assert.Len(t, many, 3)
		assert.Equal(t, "cy", many["u3"].Name)
		pttl, err := db.Client.PTTL(ctx, db.Key("u2")).Result()
		require.NoError(t, err)
		assert.Greater(t, pttl, 59*time.Minute)

		require.NoError(t, r.Delete(ctx, "u1"))
		_, _, ok, err = r.Get(ctx, "u1")
		require.NoError(t, err)
		assert.False(t, ok)

		require.NoError(t, r.Set(ctx, "group:a", user{}, 0))
		require.NoError(t, r.Set(ctx, "group:b", user{}, 0))
		n, err := r.DeletePrefix(ctx, "group:")
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		_, _, ok, err = r.Get(ctx, "u2")
		require.NoError(t, err)
		assert.True(t, ok, "other keys untouched")

		st := r.Stats()
		assert.Equal(t, uint64(0), st.Errors)
		assert.Positive(t, st.Hits)
		assert.Positive(t, st.Misses)
	})
}

// Batches span many slots — on a Cluster, several masters — and each key
// is written, read and deleted where it lives.
func TestCacheBatchesAcrossSlots(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		r, err := New[int](db.Client, Options{Prefix: db.Prefix})
		require.NoError(t, err)
		items := map[string]int{}
		var keys []string
		for i := range 200 {
			k := fmt.Sprint("k", i)
			items[k] = i
			keys = append(keys, k)
		}
		if db.Cluster {
			slots := map[int64]bool{}
			for _, k := range keys {
				slots[db.Client.ClusterKeySlot(ctx, r.Key(k)).Val()] = true
			}
			require.Greater(t, len(slots), 100, "the keys lie in many slots")
		}
		require.NoError(t, r.SetMany(ctx, items, time.Minute))
		got, err := r.GetMany(ctx, append(keys, "absent"))
		require.NoError(t, err)
		assert.Equal(t, items, got)
		for _, k := range keys {
			assert.Equal(t, int64(1), db.Client.Exists(ctx, r.Key(k)).Val(), "%s in Redis", k)
		}

		require.NoError(t, r.DeleteMany(ctx, keys[:150]))
		got, err = r.GetMany(ctx, keys)
		require.NoError(t, err)
		assert.Len(t, got, 50)
		for _, k := range keys[150:] {
			assert.Equal(t, items[k], got[k])
		}
		assert.Zero(t, countKeys(t, db, globEscape(db.Prefix)+"*")-50, "exactly the deleted keys are gone")
		assert.Zero(t, r.Stats().Errors)
	})
}

// No operation needs its keys in one slot, so any prefix is accepted; one
// with a hash tag puts every key of the cache in one slot, and everything
// still works.
func TestCacheHashTaggedPrefix(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		r, err := New[int](db.Client, Options{Prefix: "{" + db.Prefix + "tag}:"})
		require.NoError(t, err)
		items := map[string]int{"a": 1, "b": 2, "c:1": 3, "c:2": 4}
		require.NoError(t, r.SetMany(ctx, items, time.Minute))
		if db.Cluster {
			slot := db.Client.ClusterKeySlot(ctx, r.Key("a")).Val()
			for k := range items {
				assert.Equal(t, slot, db.Client.ClusterKeySlot(ctx, r.Key(k)).Val(), "%s in the tag's slot", k)
			}
		}
		got, err := r.GetMany(ctx, []string{"a", "b", "c:1", "c:2"})
		require.NoError(t, err)
		assert.Equal(t, items, got)
		n, err := r.DeletePrefix(ctx, "c:")
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		require.NoError(t, r.DeleteMany(ctx, []string{"a", "b"}))
		n, err = r.DeletePrefix(ctx, "")
		require.NoError(t, err)
		assert.Zero(t, n, "nothing left")
	})
}

type badCodec struct{}

var errCodecBroken = errors.New("codec broken")

func (badCodec) Marshal(any) ([]byte, error) { return nil, errCodecBroken }
func (badCodec) Unmarshal([]byte, any) error { return errCodecBroken }

func TestCacheBadInputAndCodecErrors(t *testing.T) {
	_, err := New[int](nil, Options{})
	require.ErrorIs(t, err, cache.ErrInvalidConfig)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	_, err = New[int](c, Options{Timeout: -1})
	require.ErrorIs(t, err, cache.ErrInvalidConfig)

	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		var reported atomic.Int32
		r, err := New[int](db.Client, Options{Prefix: db.Prefix, Codec: badCodec{}, OnError: func(error) { reported.Add(1) }})
		require.NoError(t, err)
		err = r.Set(ctx, "k", 1, 0)
		require.ErrorIs(t, err, ErrCodec)
		require.ErrorIs(t, err, errCodecBroken)
		assert.Contains(t, err.Error(), `"k"`)
		require.NoError(t, db.Client.Set(ctx, db.Key("k"), "1", 0).Err())
		_, _, _, err = r.Get(ctx, "k")
		require.ErrorIs(t, err, ErrCodec)
		err = r.SetMany(ctx, map[string]int{"a": 1}, 0)
		require.ErrorIs(t, err, ErrCodec)
		exists, err := db.Client.Exists(ctx, db.Key("a")).Result()
		require.NoError(t, err)
		assert.Zero(t, exists, "nothing written when encoding fails")
		err = r.Set(ctx, "k", 1, -time.Second)
		require.ErrorIs(t, err, cache.ErrInvalidConfig)
		assert.Equal(t, int32(3), reported.Load())
		assert.Equal(t, uint64(3), r.Stats().Errors)

		_, err = NewMultiLevel[int](ctx, nil, r, MultiLevelOptions{})
		require.ErrorIs(t, err, cache.ErrInvalidConfig)
	})
}

func TestCacheDeletePrefix(t *testing.T) {
	redistest.Each(t, func(t *testing.T, db *redistest.DB) {
		ctx := t.Context()
		r, err := New[int](db.Client, Options{Prefix: db.Key("a:")})
		require.NoError(t, err)
		other, err := New[int](db.Client, Options{Prefix: db.Key("b:")})
		require.NoError(t, err)

		// More matching keys than one SCAN page holds; on a Cluster they
		// lie on every master.
		bulk := map[string]int{}
		for i := range 3 * scanBatch {
			bulk[fmt.Sprint("bulk:", i)] = i
		}
		require.NoError(t, r.SetMany(ctx, bulk, time.Minute))
		if cc, ok := db.Client.(*redis.ClusterClient); ok {
			var masters atomic.Int32
			require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
				if n := countOn(t, c, db.Key("a:bulk:*")); n > 0 {
					masters.Add(1)
				}
				return nil
			}))
			require.Greater(t, masters.Load(), int32(1), "the keys lie on several masters")
		}
		require.NoError(t, r.Set(ctx, "bulky", 1, 0))
		require.NoError(t, other.Set(ctx, "bulk:1", 1, 0)) // the same key under another store's prefix
		n, err := r.DeletePrefix(ctx, "bulk:")
		require.NoError(t, err)
		assert.Equal(t, 3*scanBatch, n)
		assert.Zero(t, countKeys(t, db, db.Key("a:bulk:*")), "every matching key deleted")
		_, _, ok, err := r.Get(ctx, "bulky")
		require.NoError(t, err)
		assert.True(t, ok, "a key that only shares the prefix's letters without its colon stays")
		_, _, ok, err = other.Get(ctx, "bulk:1")
		require.NoError(t, err)
		assert.True(t, ok, "another store's keys stay")

		// Glob characters in the prefix match only themselves: unescaped,
		// "g*[x]?\y:" would also match the decoys.
		glob := `g*[x]?\y:`
		for _, k := range []string{glob + "1", glob + "2", `gQQxZy:1`, `g*[x]?\y`, `g*x?y:1`} {
			require.NoError(t, r.Set(ctx, k, 1, 0))
		}
		n, err = r.DeletePrefix(ctx, glob)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		for _, k := range []string{`gQQxZy:1`, `g*[x]?\y`, `g*x?y:1`} {
			_, _, ok, err := r.Get(ctx, k)
			require.NoError(t, err)
			assert.True(t, ok, "decoy %q deleted by an unescaped pattern", k)
		}

		// An empty prefix deletes the whole store — and only that store.
		n, err = other.DeletePrefix(ctx, "")
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		_, _, ok, err = r.Get(ctx, "bulky")
		require.NoError(t, err)
		assert.True(t, ok)
		// Without a store prefix it would delete the whole database: refused.
		bare, err := New[int](db.Client, Options{})
		require.NoError(t, err)
		_, err = bare.DeletePrefix(ctx, "")
		require.ErrorIs(t, err, cache.ErrInvalidConfig)
		assert.Equal(t, uint64(0), r.Stats().Errors+other.Stats().Errors)
	})
}

// A Ring shards keys by the client's own hashing: DeletePrefix walks
// every shard. (The two shards are two databases of the one test server.)
func TestCacheDeletePrefixOnRing(t *testing.T) {
	db := redistest.New(t)
	ctx := t.Context()
	ring := redis.NewRing(&redis.RingOptions{
		Addrs: map[string]string{"a": db.Addr, "b": db.Addr + "/db1"},
		NewClient: func(opt *redis.Options) *redis.Client {
			if addr, ok := strings.CutSuffix(opt.Addr, "/db1"); ok {
				opt.Addr, opt.DB = addr, 1
			}
			return redis.NewClient(opt)
		},
	})
	t.Cleanup(func() { _ = ring.Close() })
	db1 := redis.NewClient(&redis.Options{Addr: db.Addr, DB: 1})
	t.Cleanup(func() {
		_ = redistest.Purge(context.Background(), db1, db.Prefix)
		_ = db1.Close()
	})
	r, err := New[int](ring, Options{Prefix: db.Prefix})
	require.NoError(t, err)
	items := map[string]int{}
	for i := range 100 {
		items[fmt.Sprint("k", i)] = i
	}
	require.NoError(t, r.SetMany(ctx, items, time.Minute))
	pattern := globEscape(db.Prefix) + "*"
	require.Positive(t, countOn(t, db.Client, pattern), "keys on shard a")
	require.Positive(t, countOn(t, db1, pattern), "keys on shard b")

	n, err := r.DeletePrefix(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, len(items), n)
	assert.Zero(t, countOn(t, db.Client, pattern)+countOn(t, db1, pattern), "every shard emptied")
}

// countKeys counts the keys matching pattern with SCAN, on every master of
// a Cluster.
func countKeys(t *testing.T, db *redistest.DB, pattern string) int {
	t.Helper()
	cc, ok := db.Client.(*redis.ClusterClient)
	if !ok {
		return countOn(t, db.Client, pattern)
	}
	var n atomic.Int64
	require.NoError(t, cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error {
		n.Add(int64(countOn(t, c, pattern)))
		return nil
	}))
	return int(n.Load())
}

// countOn counts the keys matching pattern on one server.
func countOn(t *testing.T, c redis.UniversalClient, pattern string) int {
	n := 0
	it := c.Scan(t.Context(), 0, pattern, 1000).Iterator()
	for it.Next(t.Context()) {
		n++
	}
	require.NoError(t, it.Err())
	return n
}

// A Cache or MultiLevel not made by its constructor returns an error
// wrapping ErrInvalidConfig at once: it never panics or blocks.
func TestZeroValuesReturnAtOnce(t *testing.T) {
	ctx := context.Background()
	var r Cache[int]
	_, _, _, err := r.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrInvalidConfig)
	require.ErrorIs(t, r.Set(ctx, "k", 1, 0), cache.ErrInvalidConfig)
	require.ErrorIs(t, r.Delete(ctx, "k"), cache.ErrInvalidConfig)
	require.ErrorIs(t, r.DeleteMany(ctx, []string{"k"}), cache.ErrInvalidConfig)
	_, err = r.DeletePrefix(ctx, "p:")
	require.ErrorIs(t, err, cache.ErrInvalidConfig)
	_, err = r.GetMany(ctx, []string{"k"})
	require.ErrorIs(t, err, cache.ErrInvalidConfig)
	require.ErrorIs(t, r.SetMany(ctx, map[string]int{"k": 1}, 0), cache.ErrInvalidConfig)
	assert.Zero(t, r.Stats())

	var m MultiLevel[int]
	_, _, ok, err := m.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrInvalidConfig)
	assert.False(t, ok)
	require.ErrorIs(t, m.Set(ctx, "k", 1, 0), cache.ErrInvalidConfig)
	require.ErrorIs(t, m.Delete(ctx, "k"), cache.ErrInvalidConfig)
	_, err = m.DeletePrefix(ctx, "p")
	require.ErrorIs(t, err, cache.ErrInvalidConfig)
	assert.Zero(t, m.Stats())
	require.NoError(t, m.Close(ctx))
}

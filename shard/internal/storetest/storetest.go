// Package storetest holds the contracts every [shard.Store] and
// [shard.Checkpoint] implementation keeps, as test helpers: package shard
// runs them on its in-memory implementations and package redisshard on
// Redis, so one table of assertions pins both.
package storetest

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/shard"
)

// Store checks the Store contract on a fresh store from newStore: absent
// keys, overwrites, ordered and bounded scans over keys with odd bytes,
// deletes that leave the index too, and a cancelled context.
func Store(t *testing.T, newStore func(name string) shard.Store) {
	t.Helper()
	s := newStore("s1")
	ctx := context.Background()
	_, err := s.Get(ctx, "missing")
	assert.ErrorIs(t, err, shard.ErrNotFound)
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
	assert.Equal(t, []string{"a", "ab", "b", "c", "d\x00x"}, KeysOf(all))
	part, err := s.Scan(ctx, "ab", "c", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"ab", "b"}, KeysOf(part))
	assert.Equal(t, "v2", string(part[1].Value))
	lim, err := s.Scan(ctx, "a\x00", "", 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"ab", "b"}, KeysOf(lim))

	require.NoError(t, s.Delete(ctx, "b"))
	_, err = s.Get(ctx, "b")
	assert.ErrorIs(t, err, shard.ErrNotFound)
	all, err = s.Scan(ctx, "", "", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "ab", "c", "d\x00x"}, KeysOf(all), "a delete removes the key from the index too")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	assert.Error(t, s.Put(cancelled, "x", nil), "a cancelled context stops the call")
}

// Checkpoint checks that cp keeps the last saved key per shard, and that an
// empty key is a saved checkpoint.
func Checkpoint(t *testing.T, cp shard.Checkpoint) {
	t.Helper()
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
}

// Nodes returns n shards of weight 1 named shard-000, shard-001, ...;
// Router places its keys on Nodes(4).
func Nodes(n int) []shard.Node {
	nodes := make([]shard.Node, n)
	for i := range nodes {
		nodes[i] = shard.Node{Name: fmt.Sprintf("shard-%03d", i), Weight: 1}
	}
	return nodes
}

// Router checks a Router over a ring of [Nodes](4), one store from
// newStore each: every key lives on exactly the shard the placement names,
// and the cross-shard Scan, TopN and Count merge the shards.
func Router(t *testing.T, newStore func(name string) shard.Store) {
	t.Helper()
	ring, err := shard.NewRing(Nodes(4), shard.RingOptions{})
	require.NoError(t, err)
	stores := map[string]shard.Store{}
	for _, n := range ring.Nodes() {
		stores[n.Name] = newStore(n.Name)
	}
	r, err := shard.NewRouter(ring, stores, shard.RouterOptions{})
	require.NoError(t, err)
	ctx := context.Background()
	Fill(t, r.Put, 200)

	// Each key is on exactly the shard the placement names.
	for i := range 200 {
		k := fmt.Sprintf("k%05d", i)
		owner, err := r.ShardFor(k)
		require.NoError(t, err)
		for name, s := range stores {
			_, err := s.Get(ctx, k)
			if name == owner {
				require.NoError(t, err, k)
			} else {
				require.ErrorIs(t, err, shard.ErrNotFound, k)
			}
		}
		v, err := r.Get(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(i), string(v))
	}

	got, err := r.Scan(ctx, "k00010", "k00020", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"k00010", "k00011", "k00012", "k00013", "k00014", "k00015", "k00016", "k00017", "k00018", "k00019"}, KeysOf(got))
	got, err = r.Scan(ctx, "k00010", "k00013", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"k00010", "k00011", "k00012"}, KeysOf(got))
	got, err = r.Scan(ctx, "", "", 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"k00000", "k00001", "k00002"}, KeysOf(got))

	byValueDesc := func(a, b shard.KV) int {
		x, _ := strconv.Atoi(string(a.Value))
		y, _ := strconv.Atoi(string(b.Value))
		return y - x
	}
	top, err := r.TopN(ctx, "", "", 3, byValueDesc)
	require.NoError(t, err)
	assert.Equal(t, []string{"k00199", "k00198", "k00197"}, KeysOf(top))

	n, err := r.Count(ctx, "k00100", "")
	require.NoError(t, err)
	assert.Equal(t, 100, n)

	require.NoError(t, r.Delete(ctx, "k00199"))
	_, err = r.Get(ctx, "k00199")
	assert.ErrorIs(t, err, shard.ErrNotFound)
	s := r.Stats()
	assert.Equal(t, uint64(200), s.Puts)
	assert.Equal(t, uint64(5), s.Queries)
	assert.Zero(t, s.ShardErrors)
}

// KeysOf returns the keys of kvs in order.
func KeysOf(kvs []shard.KV) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

// Fill puts the keys k00000, k00001, ... with their numbers as values
// through put, n of them.
func Fill(t *testing.T, put func(ctx context.Context, k string, v []byte) error, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, put(context.Background(), fmt.Sprintf("k%05d", i), []byte(fmt.Sprint(i))))
	}
}

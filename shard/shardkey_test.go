package shard

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHashTag(t *testing.T) {
	for key, want := range map[string]string{
		"{user:42}:orders:7": "user:42",
		"orders:{user:42}":   "user:42",
		"plain":              "plain",
		"{}empty":            "{}empty",
		"{unclosed":          "{unclosed",
		"a{b}{c}":            "b",
		"":                   "",
	} {
		assert.Equal(t, want, HashTag(key), "%q", key)
	}
}

// With a shard key, one user's rows share a shard — through the router, the
// migration and the plan.
func TestShardKey_CoLocatesRelatedKeys(t *testing.T) {
	nodes := makeNodes(4)
	old, err := NewRendezvous(nodes[:3])
	require.NoError(t, err)
	next, err := NewRendezvous(nodes)
	require.NoError(t, err)
	stores := map[string]Store{}
	for _, n := range nodes {
		stores[n.Name] = &MemStore{}
	}
	r, err := NewRouter(old, stores, RouterOptions{ShardKey: HashTag})
	require.NoError(t, err)
	ctx := context.Background()
	var keys []string
	for u := range 50 {
		for _, row := range []string{"profile", "orders:1", "orders:2"} {
			k := fmt.Sprintf("{user:%d}:%s", u, row)
			keys = append(keys, k)
			require.NoError(t, r.Put(ctx, k, []byte(row)))
		}
	}
	for u := range 50 {
		want, err := r.ShardFor(fmt.Sprintf("{user:%d}:profile", u))
		require.NoError(t, err)
		for _, row := range []string{"orders:1", "orders:2"} {
			got, err := r.ShardFor(fmt.Sprintf("{user:%d}:%s", u, row))
			require.NoError(t, err)
			assert.Equal(t, want, got, "user %d", u)
		}
		assert.Equal(t, nodes[old.Locate(fmt.Sprintf("user:%d", u))].Name, want)
	}
	n, err := r.Count(ctx, "", "")
	require.NoError(t, err)
	assert.Equal(t, 150, n, "the ownership filter uses the shard key too")

	plan, err := PlanMoves(old, next, slices.Values(keys), PlanOptions{ShardKey: HashTag})
	require.NoError(t, err)
	assert.Zero(t, plan.Moved%3, "a user's rows move together")

	m, err := NewMigration(old, next, stores, MigrationOptions{ShardKey: HashTag})
	require.NoError(t, err)
	require.NoError(t, m.Copy(ctx))
	rep, err := m.Verify(ctx)
	require.NoError(t, err)
	require.Zero(t, rep.Missing)
	require.NoError(t, m.Switch())
	deleted, err := m.Cleanup(ctx)
	require.NoError(t, err)
	assert.Equal(t, plan.Moved, deleted)
	r2, err := m.Router(RouterOptions{})
	require.NoError(t, err)
	for _, k := range keys {
		_, err := r2.Get(ctx, k)
		require.NoError(t, err, k)
	}
}

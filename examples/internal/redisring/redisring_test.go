package redisring

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/shard"
)

// Clients are never dialled here: placement needs none.
func clients(n int) []redis.UniversalClient {
	out := make([]redis.UniversalClient, n)
	for i := range out {
		out[i] = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	}
	return out
}

// Without shards every id is on the default server; with them, each id is
// on the server the documented ring (shard.NewRing over "0".."n-1") names.
func TestPlacement(t *testing.T) {
	def := clients(1)[0]
	r, err := New(def, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, r.Len())
	assert.Equal(t, 0, r.Index("alice"))
	assert.Same(t, def, r.DB("alice"))

	dbs := clients(3)
	r, err = New(def, dbs)
	require.NoError(t, err)
	assert.Equal(t, 3, r.Len())
	ring, err := shard.NewRing(shard.NodesNamed("0", "1", "2"), shard.RingOptions{})
	require.NoError(t, err)
	seen := map[int]bool{}
	for i := range 100 {
		id := "u" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		want := ring.Locate(id)
		seen[want] = true
		assert.Equal(t, want, r.Index(id), id)
		assert.Same(t, dbs[want], r.DB(id), id)
		assert.Same(t, dbs[want], r.Shard(want))
	}
	assert.Len(t, seen, 3, "ids spread over every server")
}

// A nil server is refused, named by its index.
func TestNilShard(t *testing.T) {
	dbs := clients(2)
	_, err := New(nil, []redis.UniversalClient{dbs[0], nil, dbs[1]})
	require.ErrorIs(t, err, ErrNilShard)
	assert.ErrorContains(t, err, "Shards[1]")
}

package service_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/shard"
)

// With two shards (two Redis databases here), each conversation's and
// each user's keys are on the shard the documented ring names and on no
// other, and messages flow between users placed on different shards —
// one-to-one and in a group.
func TestShardedStorage(t *testing.T) {
	e := newEnv(t, 0, service.Config{}, false)
	other := redis.NewClient(&redis.Options{Addr: e.db.Addr, DB: 1})
	t.Cleanup(func() {
		require.NoError(t, redistest.Purge(context.Background(), other, e.db.Prefix))
		_ = other.Close()
	})
	dbs := []redis.UniversalClient{e.rdb, other}
	e.start(service.Config{Shards: dbs})
	e.start(service.Config{Shards: dbs})

	// The placement Config.Shards documents.
	ring, err := shard.NewRing(shard.NodesNamed("0", "1"), shard.RingOptions{})
	require.NoError(t, err)
	// Two users on different shards, and a conversation between them.
	a, b := "", ""
	for i := 0; a == "" || b == ""; i++ {
		u := fmt.Sprintf("user%d", i)
		if ring.Locate("u:"+u) == 0 && a == "" {
			a = u
		} else if ring.Locate("u:"+u) == 1 && b == "" {
			b = u
		}
	}
	ua, ub := e.dial(a, 0), e.dial(b, 1)
	conv := service.DirectConversation(a, b)
	ua.send(conv, "m1", "across shards")
	got := ub.next("msg")
	assert.Equal(t, "m1", got.ID)
	ub.ack(conv, got.Seq)

	st, _ := e.postJSON(e.urls[0]+"/api/v1/groups", a, map[string]any{"id": "team", "members": []string{a, b}})
	require.Equal(t, 201, st)
	ua.send("g:team", "g1", "to the group")
	for {
		if f := ub.next("msg"); f.Conv == "g:team" {
			assert.Equal(t, "g1", f.ID)
			break
		}
	}

	ctx := context.Background()
	exists := func(db redis.UniversalClient, key string) bool {
		n, err := db.Exists(ctx, e.db.Prefix+key).Result()
		require.NoError(t, err)
		return n == 1
	}
	for _, k := range []struct{ id, key string }{
		{"c:" + conv, "{c:" + conv + "}:log"},
		{"c:g:team", "{c:g:team}:members"},
		{"u:" + a, "{u:" + a + "}:presence"},
		{"u:" + a, "{u:" + a + "}:inbox"},
		{"u:" + b, "{u:" + b + "}:acked"},
		{"u:" + b, "{u:" + b + "}:groups"},
	} {
		i := ring.Locate(k.id)
		assert.True(t, exists(dbs[i], k.key), "%s not on shard %d", k.key, i)
		assert.False(t, exists(dbs[1-i], k.key), "%s also on shard %d", k.key, 1-i)
	}
}

func TestShardsRejectNil(t *testing.T) {
	e := newEnv(t, 0, service.Config{}, false)
	_, err := service.New(context.Background(), service.Config{Redis: e.rdb, Authenticate: e.tokens.User, Shards: []redis.UniversalClient{e.rdb, nil}})
	require.Error(t, err)
	assert.True(t, errors.Is(err, service.ErrInvalidConfig), "%v", err)
	assert.Contains(t, err.Error(), "Shards[1]")
}

package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/feed/fanout"
	"github.com/sysdesign-go/sysdesign/examples/feed/service"
	"github.com/sysdesign-go/sysdesign/internal/redistest"
	"github.com/sysdesign-go/sysdesign/shard"
)

// With three shards (three databases of the test's Redis here), every
// strategy shows each user the same home timelines as on one node, and
// each user's keys are on the shard the documented ring places the user
// on and on no other; the keys that are no user's (the sequence, the
// fan-out queues, the post stream) stay on Config.Redis.
func TestShardedStrategiesShowTheSameTimelines(t *testing.T) {
	db := redistest.New(t)
	shards := []redis.UniversalClient{db.Client}
	for i := 1; i <= 2; i++ {
		c := redis.NewClient(&redis.Options{Addr: db.Addr, DB: i})
		t.Cleanup(func() {
			require.NoError(t, redistest.Purge(context.Background(), c, db.Prefix))
			_ = c.Close()
		})
		shards = append(shards, c)
	}
	// The placement Config.Shards documents.
	ring, err := shard.NewRing(shard.NodesNamed("0", "1", "2"), shard.RingOptions{})
	require.NoError(t, err)
	// The scenario's roles played by users placed round the shards:
	// celeb on shard 0, ann on 1, bob on 2, cat on 0, and so on.
	users := make([]string, len(roles))
	for r, role := range roles {
		for k := 0; users[r] == ""; k++ {
			if u := fmt.Sprintf("%s%d", role, k); ring.Locate(u) == r%3 {
				users[r] = u
			}
		}
	}

	ctx := context.Background()
	for i, st := range []fanout.Strategy{fanout.OnWrite, fanout.OnRead, fanout.Hybrid(3)} {
		one, sharded := *db, *db
		one.Prefix = fmt.Sprintf("%sone%d:", db.Prefix, i)
		sharded.Prefix = fmt.Sprintf("%ssh%d:", db.Prefix, i)
		want := scenario(t, newEnv(t, &one, service.Config{Strategy: st}, false), users...)
		got := scenario(t, newEnv(t, &sharded, service.Config{Strategy: st, Shards: shards}, false), users...)
		assert.Len(t, got[users[3]], 8, "%v: cat sees celeb and self, not ann after unfollowing", st)
		assert.Len(t, got[users[1]], 12, "%v: ann sees celeb, bob and self", st)
		assert.Equal(t, want, got, "%v: sharded as on one node", st)

		userKeys := make([]int, len(shards))
		for j, c := range shards {
			keys, err := c.Keys(ctx, sharded.Prefix+"*").Result()
			require.NoError(t, err)
			for _, k := range keys {
				rest := strings.TrimPrefix(k, sharded.Prefix)
				user, ok := strings.CutPrefix(rest, "u:{")
				if !ok {
					assert.Equal(t, 0, j, "%v: %s is no user's key: on Config.Redis", st, k)
					continue
				}
				user, _, _ = strings.Cut(user, "}")
				assert.Equal(t, ring.Locate(user), j, "%v: %s on shard %d", st, k, j)
				userKeys[j]++
			}
		}
		for j, n := range userKeys {
			assert.Positive(t, n, "%v: shard %d holds users' keys", st, j)
		}
	}
}

func TestShardsRejectNil(t *testing.T) {
	db := redistest.New(t)
	tokens, err := service.NewTokens(testKey)
	require.NoError(t, err)
	_, err = service.New(context.Background(), service.Config{Redis: db.Client, Prefix: db.Prefix, Authenticate: tokens.User,
		Shards: []redis.UniversalClient{db.Client, nil}})
	require.Error(t, err)
	assert.True(t, errors.Is(err, service.ErrInvalidConfig), "%v", err)
	assert.Contains(t, err.Error(), "Shards[1]")
}

package redisproc

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A started server answers on its address and keeps what it is given;
// stopped, it answers no more.
func TestStart(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("SYSDESIGN_REQUIRE_REDIS") != "" {
			t.Fatal("SYSDESIGN_REQUIRE_REDIS is set and redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	ctx := context.Background()
	addr, stop, err := Start(ctx)
	require.NoError(t, err)
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	require.NoError(t, rdb.Set(ctx, "k", "v", 0).Err())
	got, err := rdb.Get(ctx, "k").Result()
	require.NoError(t, err)
	assert.Equal(t, "v", got)
	stop()
	assert.Error(t, rdb.Ping(ctx).Err(), "the server is gone")
}

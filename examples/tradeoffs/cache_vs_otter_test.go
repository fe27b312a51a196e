package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
)

// cache.Memory's W-TinyLFU, sharded as by default, is no more than a point
// below otter v2 on Zipf 0.99 and on the shifting working set, at 1k and
// 10k entries.
func TestCacheVsOtterClaims(t *testing.T) {
	rows, err := cacheVsOtterRun(context.Background(), &lab.Env{Seed: 1, Quick: true})
	require.NoError(t, err)
	require.Len(t, rows, 4)
	for _, r := range rows {
		t.Logf("%s size %d: sharded %.4f, one shard %.4f, otter %.4f", r.workload, r.size, r.sharded, r.single, r.peer)
		assert.Greater(t, r.peer, 0.2, "otter caches")
		assert.Less(t, r.peer, 1.0)
		assert.GreaterOrEqual(t, r.sharded, r.peer-0.01, "%s size %d", r.workload, r.size)
	}
}

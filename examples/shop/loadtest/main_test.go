package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

// bleve starts its analysis workers when its package loads, for the life
// of the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"))
}

// The short flash sale: a few hundred buyers for 15 units, payment faults,
// an instance killed and Redis cut for a fraction of a second — for each
// inventory, no invariant may break.
func TestFlashSaleShort(t *testing.T) {
	db := redistest.New(t)
	for _, inv := range []string{"raft", "redis", "reservations"} {
		t.Run("inventory="+inv, func(t *testing.T) {
			o := defaultOptions()
			o.Inventory, o.RedisAddr, o.DataDir = inv, db.Addr, t.TempDir()
			o.Buyers, o.Stock, o.Concurrency, o.RedisCut = 200, 15, 32, 300*time.Millisecond
			o.Faults.Declines, o.Faults.Errors = 0.2, 0.1
			o.Patience, o.Drain = 10*time.Second, 15*time.Second
			r, err := Run(t.Context(), o)
			require.NoError(t, err)
			var out bytes.Buffer
			r.print(&out)
			t.Log(out.String())
			assert.Empty(t, r.Violations)
			assert.Positive(t, r.Completed)
			assert.LessOrEqual(t, r.Completed, o.Stock)
			assert.Positive(t, r.Failed)
			assert.Zero(t, r.Unfinished)
			assert.Equal(t, o.Buyers, r.Completed+r.Failed+r.Abandoned)
		})
	}
}

// A bad flag is refused.
func TestRunRejectsBadFlag(t *testing.T) {
	var out bytes.Buffer
	assert.Error(t, run(t.Context(), []string{"-buyers", "many"}, &out))
}

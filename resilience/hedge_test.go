package resilience

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHedgeCutsTheTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := NewHedge[int](HedgeOptions{Delay: 10 * time.Millisecond})
		require.NoError(t, err)
		var calls atomic.Int32
		var cancelled atomic.Int32
		// The first request is stuck; the hedge answers in 5 ms.
		fn := func(ctx context.Context) (int, error) {
			n := calls.Add(1)
			d := 5 * time.Millisecond
			if n == 1 {
				d = time.Hour
			}
			select {
			case <-time.After(d):
				return int(n), nil
			case <-ctx.Done():
				cancelled.Add(1)
				return 0, ctx.Err()
			}
		}
		start := time.Now()
		v, err := h.Execute(t.Context(), fn)
		require.NoError(t, err)
		assert.Equal(t, 2, v)
		assert.Equal(t, 15*time.Millisecond, time.Since(start))
		synctest.Wait()
		assert.Equal(t, int32(1), cancelled.Load(), "the losing request is cancelled")
		assert.Equal(t, HedgeStats{Calls: 1, Hedges: 1, HedgeWins: 1}, h.Stats())

		// A fast call sends no hedge.
		v, err = h.Execute(t.Context(), ok)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		assert.Equal(t, uint64(1), h.Stats().Hedges)
	})
}

func TestHedgeDelayFollowsObservedQuantileAndBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget, err := NewBudget(BudgetOptions{Ratio: 0.5, MinPerWindow: -1})
		require.NoError(t, err)
		h, err := NewHedge[int](HedgeOptions{MinSamples: 20, Budget: budget})
		require.NoError(t, err)
		assert.Equal(t, 10*time.Millisecond, h.HedgeDelay(), "initial delay until enough samples")
		for i := range 100 {
			d := time.Duration(i+1) * time.Millisecond
			_, err := h.Execute(t.Context(), func(ctx context.Context) (int, error) {
				select {
				case <-time.After(d):
					return 0, nil
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			})
			require.NoError(t, err)
		}
		synctest.Wait()
		// Latencies went 1..100 ms but hedging capped the slow ones; the
		// estimate is the observed p95 of winners.
		d := h.HedgeDelay()
		assert.Greater(t, d, 5*time.Millisecond)
		assert.LessOrEqual(t, d, 100*time.Millisecond)
		st := h.Stats()
		assert.LessOrEqual(t, float64(st.Hedges), 0.5*100+1, "hedges stay within the budget")
		assert.Positive(t, st.Hedges)

		// Every request fails: the last error is returned.
		_, err = h.Execute(t.Context(), fail)
		assert.ErrorIs(t, err, errBoom)
	})
	for _, o := range []HedgeOptions{{Delay: -1}, {MaxHedges: -1}, {Quantile: 1.5}, {MinSamples: -1}} {
		_, err := NewHedge[int](o)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
}

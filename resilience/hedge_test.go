package resilience

import (
	"context"
	"errors"
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

// sleeper returns a call that takes d (or ends with its context).
func sleeper(d time.Duration, v int) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		select {
		case <-time.After(d):
			return v, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// The adaptive delay is InitialDelay until MinSamples calls have
// succeeded, then the Quantile of their latencies.
func TestHedgeDelayIsTheQuantileOfMinSamples(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := NewHedge[int](HedgeOptions{Quantile: 0.5, MinSamples: 20, InitialDelay: time.Hour})
		require.NoError(t, err)
		for i := range 19 {
			_, err := h.Execute(t.Context(), sleeper(time.Duration(20-i)*time.Millisecond, 0))
			require.NoError(t, err)
		}
		assert.Equal(t, time.Hour, h.HedgeDelay(), "19 samples of 20")
		_, err = h.Execute(t.Context(), sleeper(time.Millisecond, 0))
		require.NoError(t, err)
		assert.Equal(t, 11*time.Millisecond, h.HedgeDelay(), "the 11th of 1..20 ms")
		assert.Equal(t, HedgeStats{Calls: 20}, h.Stats())
	})
}

// MaxHedges bounds the extra requests: each goes a delay after the last,
// and the first success wins.
func TestHedgeMaxHedges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := NewHedge[int](HedgeOptions{Delay: 10 * time.Millisecond, MaxHedges: 2})
		require.NoError(t, err)
		var calls atomic.Int32
		start := time.Now()
		v, err := h.Execute(t.Context(), func(ctx context.Context) (int, error) {
			n := calls.Add(1)
			if n < 3 {
				return sleeper(time.Hour, 0)(ctx)
			}
			return sleeper(5*time.Millisecond, int(n))(ctx)
		})
		require.NoError(t, err)
		assert.Equal(t, 3, v)
		assert.Equal(t, 25*time.Millisecond, time.Since(start), "two delays, then the second hedge's 5 ms")
		assert.Equal(t, HedgeStats{Calls: 1, Hedges: 2, HedgeWins: 1}, h.Stats())

		// With every request stuck, no third hedge goes out.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		calls.Store(0)
		_, err = h.Execute(ctx, func(ctx context.Context) (int, error) {
			calls.Add(1)
			return sleeper(time.Hour, 0)(ctx)
		})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		synctest.Wait()
		assert.Equal(t, int32(3), calls.Load())
		assert.Equal(t, HedgeStats{Calls: 2, Hedges: 4, HedgeWins: 1}, h.Stats())
	})
}

// A hedge the budget refuses is not sent: the call waits for the first
// request, and the refusal is counted.
func TestHedgeBudgetDenied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget, err := NewBudget(BudgetOptions{Ratio: 0.01, MinPerWindow: -1})
		require.NoError(t, err)
		h, err := NewHedge[int](HedgeOptions{Delay: 10 * time.Millisecond, Budget: budget})
		require.NoError(t, err)
		start := time.Now()
		v, err := h.Execute(t.Context(), sleeper(30*time.Millisecond, 4))
		require.NoError(t, err)
		assert.Equal(t, 4, v)
		assert.Equal(t, 30*time.Millisecond, time.Since(start))
		assert.Equal(t, HedgeStats{Calls: 1, BudgetDenied: 1}, h.Stats())
	})
	for _, o := range []HedgeOptions{{InitialDelay: -1}, {Budget: &Budget{}}, {Quantile: -0.5}} {
		_, err := NewHedge[int](o)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", o)
	}
	for _, o := range []HedgeOptions{{MaxHedges: 1, MinSamples: 1}, {Quantile: 0.99}} {
		_, err := NewHedge[int](o)
		assert.NoError(t, err, "%+v", o)
	}
}

// The tracker keeps the last size samples and re-estimates every size/8
// of them (on every sample while it holds no more than size/8).
func TestLatencyTrackerWindowAndCadence(t *testing.T) {
	tr, err := newLatencyTracker(0.5, 16)
	require.NoError(t, err)
	want := func(d time.Duration, n int) {
		t.Helper()
		got, gotN := tr.Quantile()
		assert.Equal(t, d, got)
		assert.Equal(t, n, gotN)
	}
	want(0, 0)
	tr.Record(time.Millisecond)
	want(time.Millisecond, 1)
	tr.Record(2 * time.Millisecond)
	want(2*time.Millisecond, 2)
	tr.Record(3 * time.Millisecond)
	want(2*time.Millisecond, 3) // one sample since the last estimate
	tr.Record(4 * time.Millisecond)
	want(3*time.Millisecond, 4)
	for range 16 {
		tr.Record(100 * time.Millisecond)
	}
	want(100*time.Millisecond, 16)
	for range 9 {
		tr.Record(time.Millisecond)
	}
	want(100*time.Millisecond, 16) // 9 of 16 fast, not yet re-estimated
	tr.Record(time.Millisecond)
	want(time.Millisecond, 16)

	for _, c := range []struct {
		q    float64
		size int
	}{{0, 8}, {1, 8}, {0.5, 7}} {
		_, err := newLatencyTracker(c.q, c.size)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%+v", c)
	}
	_, err = newLatencyTracker(0.01, 8)
	assert.NoError(t, err)
}

// When the first request and its hedge both fail, the call returns the
// last failure as soon as the last of them ends.
func TestHedgeAllFailAfterTheHedgeWasSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := NewHedge[int](HedgeOptions{Delay: 10 * time.Millisecond})
		require.NoError(t, err)
		var calls atomic.Int32
		errLast := errors.New("hedge failed")
		start := time.Now()
		_, err = h.Execute(t.Context(), func(context.Context) (int, error) {
			if calls.Add(1) == 1 {
				time.Sleep(20 * time.Millisecond)
				return 0, errBoom
			}
			time.Sleep(15 * time.Millisecond)
			return 0, errLast
		})
		assert.ErrorIs(t, err, errLast)
		assert.Equal(t, 25*time.Millisecond, time.Since(start))
		assert.Equal(t, HedgeStats{Calls: 1, Hedges: 1}, h.Stats())
	})
}

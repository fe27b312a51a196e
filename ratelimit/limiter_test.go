package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// t0 is the start of a window for every window length the tests use.
var t0 = time.Unix(1_700_000_000, 0)

func isBucket(alg Algorithm) bool {
	return alg == AlgTokenBucket || alg == AlgLeakyBucket || alg == AlgGCRA
}

func newTest(t testing.TB, alg Algorithm, l Limit) taker {
	t.Helper()
	lim, err := New(alg, l)
	require.NoError(t, err)
	return lim.(taker)
}

var (
	_ taker = (*TokenBucket)(nil)
	_ taker = (*LeakyBucket)(nil)
	_ taker = (*FixedWindow)(nil)
	_ taker = (*SlidingLog)(nil)
	_ taker = (*SlidingWindow)(nil)
	_ taker = (*GCRA)(nil)
	_ taker = (*Multi)(nil)
)

// Every algorithm admits its quota at once from rest, refuses the next
// event with the exact wait, and admits it once that wait has passed.
func TestLimiters_QuotaThenExactRetryAfter(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			lim := newTest(t, alg, PerSecond(10))
			for i := range 10 {
				d, err := lim.AllowN(t0, 1)
				require.NoError(t, err)
				require.True(t, d.Allowed, "event %d", i)
				assert.Equal(t, 9-i, d.Remaining, "remaining after event %d", i)
				assert.Zero(t, d.RetryAfter)
				assert.Equal(t, PerSecond(10), d.Limit)
			}
			d, err := lim.AllowN(t0, 1)
			require.NoError(t, err)
			require.False(t, d.Allowed)
			assert.Zero(t, d.Remaining)
			want := 100 * time.Millisecond // a bucket refills one token per interval
			switch alg {
			case AlgFixedWindow, AlgSlidingLog:
				want = time.Second // the window must pass
			case AlgSlidingWindow:
				// the next window weighs the previous 10 at 100%, falling to 90% after 100ms
				want = 1100 * time.Millisecond
			}
			assert.Equal(t, want, d.RetryAfter)
			assert.Positive(t, d.ResetAfter)
			before, err := lim.AllowN(t0.Add(want-time.Nanosecond), 1)
			require.NoError(t, err)
			assert.False(t, before.Allowed, "one nanosecond early")
			after, err := lim.AllowN(t0.Add(want), 1)
			require.NoError(t, err)
			assert.True(t, after.Allowed, "at RetryAfter")
		})
	}
}

// Over a long run at twice the rate, every algorithm admits the rate, not
// the offered load: within one quota of Events per second.
func TestLimiters_LongRunRate(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			lim := newTest(t, alg, PerSecond(100))
			admitted := 0
			for i := range 20_000 { // 10 s at 2,000/s
				d, err := lim.AllowN(t0.Add(time.Duration(i)*500*time.Microsecond), 1)
				require.NoError(t, err)
				if d.Allowed {
					admitted++
				}
			}
			assert.InDelta(t, 1000, admitted, 100, "admitted over 10s at 100/s")
		})
	}
}

// No window of length Per ever holds more than Events admitted events in
// the sliding log; the fixed window lets 2× through around a boundary,
// the sliding counter does not.
func TestLimiters_BoundaryBurst(t *testing.T) {
	l := Limit{Events: 10, Per: time.Second, Burst: 10}
	// 10 requests 1ms before the boundary, 10 just after it.
	burst := func(alg Algorithm) int {
		lim := newTest(t, alg, l)
		n := 0
		for i := range 20 {
			at := t0.Add(time.Second - 10*time.Millisecond + time.Duration(i)*time.Millisecond)
			if d, _ := lim.AllowN(at, 1); d.Allowed {
				n++
			}
		}
		return n
	}
	assert.Equal(t, 20, burst(AlgFixedWindow), "fixed window: the double burst at the boundary")
	assert.Equal(t, 10, burst(AlgSlidingLog), "sliding log is exact")
	assert.Equal(t, 10, burst(AlgSlidingWindow), "sliding counter weighs the previous window")
	assert.Equal(t, 10, burst(AlgGCRA), "a bucket does not care about boundaries")
}

// The sliding log is exact: at no instant does the trailing window hold
// more than Events admitted events, whatever the arrival pattern.
func TestSlidingLog_Exact(t *testing.T) {
	l := Limit{Events: 7, Per: 100 * time.Millisecond}
	lim, err := NewSlidingLog(l)
	require.NoError(t, err)
	var admitted []time.Time
	at := t0
	for i := range 5000 {
		at = at.Add(time.Duration((i*7919)%23) * time.Millisecond / 4)
		n := 1 + i%3
		d, err := lim.AllowN(at, n)
		require.NoError(t, err)
		if d.Allowed {
			for range n {
				admitted = append(admitted, at)
			}
		}
	}
	require.NotEmpty(t, admitted)
	j := 0
	for i := range admitted {
		for admitted[i].Sub(admitted[j]) >= l.Per {
			j++
		}
		require.LessOrEqual(t, i-j+1, l.Events, "window ending %v", admitted[i])
	}
}

// Bad input is an error wrapping a sentinel that names the bad value:
// never a panic, never a wait for a request that can never be granted.
func TestLimiters_BadInput(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			for _, bad := range []Limit{
				{Events: 0, Per: time.Second, Burst: 1},
				{Events: -5, Per: time.Second, Burst: 1},
				{Events: 1, Per: 0, Burst: 1},
				{Events: 1, Per: -time.Second, Burst: 1},
				{Events: 10, Per: 5, Burst: 1}, // finer than 1ns per event
				{Events: 1, Per: time.Second, Burst: -1},
			} {
				_, err := New(alg, bad)
				require.ErrorIs(t, err, ErrInvalidConfig, "%+v", bad)
				assert.Contains(t, err.Error(), "ratelimit: ")
			}
			if isBucket(alg) {
				_, err := New(alg, Limit{Events: 1, Per: time.Second})
				require.ErrorIs(t, err, ErrInvalidConfig, "burst 0")
				assert.Contains(t, err.Error(), "burst must be at least 1, got 0")
			}
			lim := newTest(t, alg, PerSecond(5))
			for _, n := range []int{0, -1} {
				_, err := lim.AllowN(t0, n)
				require.ErrorIs(t, err, ErrInvalidN)
				_, err = lim.ReserveN(t0, n)
				require.ErrorIs(t, err, ErrInvalidN)
			}
			_, err := lim.AllowN(t0, 6)
			require.ErrorIs(t, err, ErrExceedsLimit)
			assert.Contains(t, err.Error(), "n=6")
			_, err = lim.ReserveN(t0, 6)
			require.ErrorIs(t, err, ErrExceedsLimit)
			err = lim.WaitN(context.Background(), 6) // refused at once, no wait
			require.ErrorIs(t, err, ErrExceedsLimit)
		})
	}
	_, err := New(Algorithm(99), PerSecond(1))
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Equal(t, "Algorithm(99)", Algorithm(99).String())
}

// ReserveN books events at the earliest time they fit; reservations queue
// one behind another, and AllowN respects them.
func TestLimiters_Reserve(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			lim := newTest(t, alg, Limit{Events: 2, Per: time.Second, Burst: 2})
			var delays []time.Duration
			for range 6 {
				d, err := lim.ReserveN(t0, 1)
				require.NoError(t, err)
				require.True(t, d.Allowed)
				delays = append(delays, d.RetryAfter)
			}
			want := map[Algorithm][]time.Duration{
				AlgTokenBucket: {0, 0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second},
				AlgGCRA:        {0, 0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second},
				// the pacer spaces every event evenly
				AlgLeakyBucket: {0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second, 2500 * time.Millisecond},
				AlgFixedWindow: {0, 0, time.Second, time.Second, 2 * time.Second, 2 * time.Second},
				AlgSlidingLog:  {0, 0, time.Second, time.Second, 2 * time.Second, 2 * time.Second},
				// the previous window's events weigh less as it slides out:
				// 2 weighted 50% plus 1 fits at 1.5s
				AlgSlidingWindow: {0, 0, 1500 * time.Millisecond, 2 * time.Second, 3 * time.Second, 4 * time.Second},
			}[alg]
			assert.Equal(t, want, delays)
			// Behind the reservations nothing is allowed before the last one.
			d, err := lim.AllowN(t0.Add(want[5]/2), 1)
			require.NoError(t, err)
			assert.False(t, d.Allowed)
		})
	}
}

// Many goroutines deciding at one instant share the quota exactly.
func TestLimiters_ConcurrentExact(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			lim := newTest(t, alg, PerSecond(500))
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for range 200 {
						if d, _ := lim.AllowN(t0, 1); d.Allowed {
							allowed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			assert.EqualValues(t, 500, allowed.Load())
		})
	}
}

// WaitN sleeps exactly until the events fit; a wait that would outlast the
// deadline fails at once and consumes nothing; cancellation ends a wait.
func TestLimiters_Wait(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim, err := New(alg, Limit{Events: 1, Per: time.Second, Burst: 1})
				require.NoError(t, err)
				ctx := context.Background()
				start := time.Now()
				require.NoError(t, lim.WaitN(ctx, 1))
				// The next event fits in at most 2s (a sliding counter's
				// previous window weighs until it ends).
				short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				err = lim.WaitN(short, 1)
				cancel()
				require.ErrorIs(t, err, ErrLimited)
				assert.Equal(t, start, time.Now(), "a hopeless wait returns at once")
				require.NoError(t, lim.WaitN(ctx, 1))
				waited := time.Since(start)
				assert.GreaterOrEqual(t, waited, time.Second-time.Duration(start.UnixNano()%int64(time.Second)))
				assert.LessOrEqual(t, waited, 2*time.Second)

				cctx, cancel := context.WithCancel(ctx)
				done := make(chan error)
				go func() { done <- lim.WaitN(cctx, 1) }()
				synctest.Wait()
				cancel()
				require.ErrorIs(t, <-done, context.Canceled)
			})
		})
	}
}

// The leaky bucket's pacer releases events one interval apart, like
// go.uber.org/ratelimit's Take.
func TestLeakyBucket_TakeSpacesEvenly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewLeakyBucket(Limit{Events: 10, Per: time.Second, Burst: 5})
		require.NoError(t, err)
		var times []time.Time
		for range 6 {
			at, err := b.Take(context.Background())
			require.NoError(t, err)
			times = append(times, at)
		}
		for i := 1; i < len(times); i++ {
			assert.Equal(t, 100*time.Millisecond, times[i].Sub(times[i-1]), "gap %d", i)
		}
	})
}

// The meter lets a burst of Burst through at once and then the rate.
func TestLeakyBucket_Meter(t *testing.T) {
	b, err := NewLeakyBucket(Limit{Events: 10, Per: time.Second, Burst: 3})
	require.NoError(t, err)
	for i := range 3 {
		d, _ := b.AllowN(t0, 1)
		require.True(t, d.Allowed, "event %d of the burst", i)
	}
	d, _ := b.AllowN(t0, 1)
	require.False(t, d.Allowed)
	assert.Equal(t, 100*time.Millisecond, d.RetryAfter)
}

// The token bucket reports its tokens, negative after borrowing.
func TestTokenBucket_Tokens(t *testing.T) {
	b, err := NewTokenBucket(Limit{Events: 10, Per: time.Second, Burst: 4})
	require.NoError(t, err)
	assert.InDelta(t, 4, b.Tokens(t0), 1e-9)
	_, _ = b.AllowN(t0, 3)
	assert.InDelta(t, 1, b.Tokens(t0), 1e-9)
	_, _ = b.ReserveN(t0, 3)
	assert.InDelta(t, -2, b.Tokens(t0), 1e-9)
	assert.InDelta(t, 4, b.Tokens(t0.Add(time.Second)), 1e-9)
}

// The convenience constructors, and Allow on the clock.
func TestLimiters_AllowUsesClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lims []Limiter
		for _, alg := range Algorithms {
			lim, err := New(alg, PerMinute(1))
			require.NoError(t, err)
			assert.True(t, lim.Allow(), alg.String())
			assert.False(t, lim.Allow(), alg.String())
			assert.Equal(t, PerMinute(1), lim.Limit())
			lims = append(lims, lim)
		}
		time.Sleep(2 * time.Minute)
		for i, lim := range lims {
			assert.True(t, lim.Allow(), "%v after the clock moved on", Algorithms[i])
		}
	})
	assert.Equal(t, Limit{Events: 5, Per: 24 * time.Hour, Burst: 5}, PerDay(5))
	assert.Equal(t, "5/24h0m0s", PerDay(5).String())
	assert.Equal(t, "5/1s burst 9", Limit{Events: 5, Per: time.Second, Burst: 9}.String())
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{ErrInvalidConfig, ErrInvalidN, ErrExceedsLimit, ErrLimited, ErrEmptyKey, ErrKeyFunc, ErrMalformedHeader, ErrBackend}
	for i, a := range all {
		for j, b := range all {
			assert.Equal(t, i == j, errors.Is(a, b))
		}
	}
}

// The zero time.Time (a time that was never set) is an instant whose Unix
// nanoseconds wrap around: a wait computed from it would last for
// centuries. A reservation at it is refused at once instead.
func TestZeroTimeIsRefused(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			l, err := New(alg, PerSecond(1))
			require.NoError(t, err)
			_, err = l.ReserveN(time.Time{}, 1)
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.ErrorContains(t, err, "0001-01-01")
		})
	}
	m, err := NewMulti(AlgGCRA, []Limit{PerSecond(1), PerMinute(10)})
	require.NoError(t, err)
	_, err = m.ReserveN(time.Time{}, 1)
	require.ErrorIs(t, err, ErrInvalidConfig)
}

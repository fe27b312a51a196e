package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A request denied by one limit consumes from none: hammering the burst
// limit does not burn the daily quota.
func TestMulti_DeniedConsumesNothing(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			burst := Limit{Events: 2, Per: time.Second, Burst: 2}
			daily := Limit{Events: 5, Per: 24 * time.Hour, Burst: 5}
			m, err := NewMulti(alg, []Limit{burst, daily})
			require.NoError(t, err)
			allowed, denied := 0, 0
			// 100 requests in the first second: only 2 pass, and the
			// daily quota loses only those 2.
			for i := range 100 {
				d, err := m.AllowN(t0.Add(time.Duration(i)*time.Millisecond), 1)
				require.NoError(t, err)
				if d.Allowed {
					allowed++
				} else {
					denied++
					assert.Equal(t, burst, d.Limit, "the per-second limit denies")
				}
			}
			require.Equal(t, 2, allowed)
			// Later minutes: 3 more pass (5 per day in all), then the
			// daily limit denies and says so.
			for s := 2; s <= 5; s++ {
				d, err := m.AllowN(t0.Add(time.Duration(s)*time.Minute), 1)
				require.NoError(t, err)
				if s <= 4 {
					require.True(t, d.Allowed, "minute %d", s)
					allowed++
				} else {
					denied++
					require.False(t, d.Allowed)
					assert.Equal(t, daily, d.Limit)
					assert.Greater(t, d.RetryAfter, time.Hour)
				}
			}
			assert.Equal(t, []int{5, 99}, []int{allowed, denied})
		})
	}
}

// The tightest limit is reported: the one with the fewest remaining.
func TestMulti_ReportsTightest(t *testing.T) {
	a := Limit{Events: 10, Per: time.Second, Burst: 10}
	b := Limit{Events: 3, Per: time.Minute, Burst: 3}
	m, err := NewMulti(AlgGCRA, []Limit{a, b})
	require.NoError(t, err)
	d, err := m.AllowN(t0, 1)
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	assert.Equal(t, b, d.Limit)
	assert.Equal(t, 2, d.Remaining)
	assert.Equal(t, []Limit{a, b}, m.Limits())
	assert.Equal(t, a, m.Limit())
	// Reserving waits for the slowest limit.
	_, err = m.AllowN(t0, 2)
	require.NoError(t, err)
	r, err := m.ReserveN(t0, 1)
	require.NoError(t, err)
	assert.Equal(t, 20*time.Second, r.RetryAfter)
	// n larger than the smallest burst is refused.
	_, err = m.AllowN(t0, 4)
	require.ErrorIs(t, err, ErrExceedsLimit)

	// With as many left under each, the limit slower to recover is the
	// tighter, first or last.
	for _, limits := range [][]Limit{{PerDay(3), PerSecond(3)}, {PerSecond(3), PerDay(3)}} {
		m, err := NewMulti(AlgGCRA, limits)
		require.NoError(t, err)
		d, err := m.AllowN(t0, 1)
		require.NoError(t, err)
		assert.Equal(t, Decision{Allowed: true, Limit: PerDay(3), Remaining: 2, ResetAfter: 8 * time.Hour}, d, "%v", limits)
	}
}

// A Multi that must wait charges every limit at the instant the events
// go, not when they were asked for, and reports the tightest limit: the
// one that denies with the longest wait, or, allowed, the one with the
// fewest events left and then the longest to recover. Limit a is 1 per
// second, b 3 per 10s (an event costs 3,333,333,333ns of a bucket's
// refill, hence the 8.999999999s).
func TestMulti_ChargesWhenTheEventsGo(t *testing.T) {
	ms := time.Millisecond
	a := Limit{Events: 1, Per: time.Second, Burst: 1}
	b := Limit{Events: 3, Per: 10 * time.Second, Burst: 3}
	steps := []struct {
		at      time.Duration
		reserve bool
	}{
		{0, false},
		{100 * ms, true},   // a has no room until 1s: booked then
		{1000 * ms, false}, // a's room at 1s went to the reservation
		{1000 * ms, true},  // a's next at 2s; b now the tightest
		{2500 * ms, false}, // b denies with the longest wait
	}
	type want struct {
		allowed      bool
		limit        Limit
		retry, reset time.Duration
	}
	bucket := []want{
		{true, a, 0, time.Second},
		{true, a, 900 * ms, 1900 * ms},
		{false, a, time.Second, time.Second},
		{true, b, time.Second, 8999999999},
		{false, b, 833333333, 7499999999},
	}
	wants := map[Algorithm][]want{
		AlgTokenBucket: bucket,
		AlgLeakyBucket: bucket,
		AlgGCRA:        bucket,
		AlgFixedWindow: {
			{true, a, 0, time.Second},
			{true, a, 900 * ms, 1900 * ms},
			{false, a, time.Second, time.Second},
			{true, b, time.Second, 9 * time.Second},
			{false, b, 7500 * ms, 7500 * ms}, // b's window ends at 10s
		},
		AlgSlidingLog: {
			{true, a, 0, time.Second},
			{true, a, 900 * ms, 1900 * ms},
			{false, a, time.Second, time.Second},
			{true, b, time.Second, 11 * time.Second}, // b logged the events at 0, 1s and 2s
			{false, b, 7500 * ms, 9500 * ms},
		},
		AlgSlidingWindow: { // a's previous window weighs until it has passed
			{true, a, 0, 2 * time.Second},
			{true, a, 1900 * ms, 3900 * ms},
			{false, a, 3 * time.Second, 3 * time.Second},
			{true, b, 3 * time.Second, 19 * time.Second},
			{false, b, 10833333334, 17500 * ms},
		},
	}
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			m, err := NewMulti(alg, []Limit{a, b})
			require.NoError(t, err)
			for i, s := range steps {
				call := m.AllowN
				if s.reserve {
					call = m.ReserveN
				}
				d, err := call(t0.Add(s.at), 1)
				require.NoError(t, err)
				w := wants[alg][i]
				assert.Equal(t, Decision{Allowed: w.allowed, Limit: w.limit, RetryAfter: w.retry, ResetAfter: w.reset}, d, "step %d at %v", i, s.at)
			}
		})
	}
}

func TestMulti_BadConfig(t *testing.T) {
	_, err := NewMulti(AlgGCRA, nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewMulti(AlgGCRA, []Limit{PerSecond(1), {Events: 1, Per: -1, Burst: 1}})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "limit 1")
}

// Capacity is the largest n a request may ask: more is refused with
// ErrExceedsLimit by every limiter of that algorithm.
func TestLimit_Capacity(t *testing.T) {
	l := Limit{Events: 10, Per: time.Second, Burst: 3}
	for _, alg := range Algorithms {
		want := l.Events
		if alg == AlgTokenBucket || alg == AlgLeakyBucket || alg == AlgGCRA {
			want = l.Burst
		}
		assert.Equal(t, want, l.Capacity(alg), alg.String())
		lim, err := New(alg, l)
		require.NoError(t, err)
		_, err = lim.AllowN(t0, want+1)
		assert.ErrorIs(t, err, ErrExceedsLimit, alg.String())
		d, err := lim.AllowN(t0, want)
		require.NoError(t, err, alg.String())
		assert.True(t, d.Allowed, alg.String())
	}
}

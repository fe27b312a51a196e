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
	_, _ = m.AllowN(t0, 2)
	r, err := m.ReserveN(t0, 1)
	require.NoError(t, err)
	assert.Equal(t, 20*time.Second, r.RetryAfter)
	// n larger than the smallest burst is refused.
	_, err = m.AllowN(t0, 4)
	require.ErrorIs(t, err, ErrExceedsLimit)
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

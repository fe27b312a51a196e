package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A limiter decides the same requests the same way whenever they happen:
// before 1970 as after it, a fresh limiter or key included. (Windows are
// aligned to the epoch, so the eras compared lie whole minutes apart.)
func TestLimiters_SameDecisionsBefore1970(t *testing.T) {
	ref := time.Unix(1_700_000_040, 0) // a whole minute
	eras := []time.Time{
		time.Unix(-60, 0),                          // the first request at 1969-12-31T23:59:59
		time.Unix(-60*60*24*365*50, 0),             // 1920
		time.Unix(-(1<<62)/1_000_000_000/60*60, 0), // near the earliest instant a limiter accepts
	}
	limits := [][]Limit{{{Events: 5, Per: time.Second, Burst: 3}}, {{Events: 5, Per: time.Second, Burst: 3}, {Events: 20, Per: time.Minute, Burst: 20}}}
	for _, alg := range Algorithms {
		for _, ls := range limits {
			for _, era := range eras {
				t.Run(fmt.Sprintf("%v/limits=%d/%v", alg, len(ls), era.UTC().Format(time.DateOnly)), func(t *testing.T) {
					newLimiter := func() Limiter {
						if len(ls) == 1 {
							l, err := New(alg, ls[0])
							require.NoError(t, err)
							return l
						}
						m, err := NewMulti(alg, ls)
						require.NoError(t, err)
						return m
					}
					after, before := newLimiter(), newLimiter()
					keyedAfter, err := NewKeyed(alg, KeyedOptions{IdleTimeout: time.Hour}, ls...)
					require.NoError(t, err)
					keyedBefore, err := NewKeyed(alg, KeyedOptions{IdleTimeout: time.Hour}, ls...)
					require.NoError(t, err)
					rng := rand.New(rand.NewPCG(3, 4))
					offset := 59 * time.Second // the first request: a fresh limiter, a fresh key
					for i := range 500 {
						n := 1 + rng.IntN(2)
						key := "k" + strconv.Itoa(rng.IntN(3))
						want, err := after.AllowN(ref.Add(offset), n)
						require.NoError(t, err)
						got, err := before.AllowN(era.Add(offset), n)
						require.NoError(t, err)
						require.Equal(t, want, got, "request %d: %d events at %v", i, n, era.Add(offset).UTC())
						want, err = keyedAfter.AllowN(ref.Add(offset), key, n)
						require.NoError(t, err)
						got, err = keyedBefore.AllowN(era.Add(offset), key, n)
						require.NoError(t, err)
						require.Equal(t, want, got, "request %d: %d events for %s at %v", i, n, key, era.Add(offset).UTC())
						offset += time.Duration(rng.IntN(150)) * time.Millisecond
					}
				})
			}
		}
	}
}

// A key's idle time is counted from its first event before 1970 too: a
// key unused for IdleTimeout is swept, a key in use is kept.
func TestKeyed_IdleBefore1970(t *testing.T) {
	start := time.Unix(-100, 0)
	k, err := NewKeyed(AlgGCRA, KeyedOptions{IdleTimeout: 10 * time.Second}, PerSecond(1))
	require.NoError(t, err)
	_, err = k.AllowN(start, "old", 1)
	require.NoError(t, err)
	_, err = k.AllowN(start.Add(5*time.Second), "used", 1)
	require.NoError(t, err)
	k.Sweep(start.Add(10*time.Second - 1))
	assert.Equal(t, 2, k.Len(), "neither key has been idle for 10s")
	k.Sweep(start.Add(10 * time.Second))
	assert.Equal(t, 1, k.Len(), "old, idle for 10s, is swept; used is kept")
	d, err := k.AllowN(start.Add(10*time.Second), "used", 1)
	require.NoError(t, err)
	assert.Equal(t, Decision{Allowed: true, Limit: PerSecond(1), ResetAfter: time.Second}, d, "used kept its state: its token refilled after 1s")
}

// A clock reading a limiter cannot represent (the zero time.Time, which
// a clock that was never set returns, or one past the years 1823 to
// 2116) is refused with an error naming it, by every decision: never
// decided by nanoseconds that wrapped around.
func TestLimiters_UnrepresentableTimeIsRefused(t *testing.T) {
	bad := []time.Time{{}, time.Unix(0, -1<<62).Add(-1), time.Unix(0, 1<<62-1).Add(1), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			l, err := New(alg, PerSecond(1))
			require.NoError(t, err)
			m, err := NewMulti(alg, []Limit{PerSecond(1), PerMinute(10)})
			require.NoError(t, err)
			k, err := NewKeyed(alg, KeyedOptions{}, PerSecond(1))
			require.NoError(t, err)
			for _, now := range bad {
				for name, decide := range map[string]func() (Decision, error){
					"AllowN":       func() (Decision, error) { return l.AllowN(now, 1) },
					"ReserveN":     func() (Decision, error) { return l.ReserveN(now, 1) },
					"Multi.AllowN": func() (Decision, error) { return m.AllowN(now, 1) },
					"Keyed.AllowN": func() (Decision, error) { return k.AllowN(now, "a", 1) },
				} {
					d, err := decide()
					require.ErrorIs(t, err, ErrInvalidConfig, "%s at %v", name, now)
					assert.ErrorContains(t, err, now.String(), name)
					assert.ErrorContains(t, err, "1823 to 2116", name)
					assert.False(t, d.Allowed, name)
				}
			}
			assert.Zero(t, k.Len(), "a refused request tracks no key")
			// The edges themselves are accepted.
			for _, now := range []time.Time{time.Unix(0, -1<<62), time.Unix(0, 1<<62-1)} {
				d, err := l.AllowN(now, 1)
				require.NoError(t, err, now)
				assert.True(t, d.Allowed, now)
			}
		})
	}
	// A Keyed's own clock too.
	k, err := NewKeyed(AlgGCRA, KeyedOptions{Now: func() time.Time { return time.Time{} }}, PerSecond(1))
	require.NoError(t, err)
	_, err = k.Decide(context.Background(), "a", 1)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.False(t, k.Allow("a"))
	assert.Zero(t, k.Len())
}

// A period longer than a limiter's range of instants could not be
// computed with: it is refused.
func TestLimiters_PeriodTooLong(t *testing.T) {
	for _, alg := range Algorithms {
		_, err := New(alg, Limit{Events: 4, Per: 1<<61 + 1, Burst: 1})
		require.ErrorIs(t, err, ErrInvalidConfig, alg)
		assert.ErrorContains(t, err, "period (window) must be at most 640511h56m49.213693952s, got 640511h56m49.213693953s")
		_, err = New(alg, Limit{Events: 4, Per: 1 << 61, Burst: 1})
		require.NoError(t, err, alg)
	}
}

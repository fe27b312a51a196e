package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
				// Until the quota is whole again: a bucket refills what
				// was taken at one token per 100ms; a window resets at its
				// end, and the sliding counter once both of its windows
				// have aged out.
				wantReset := time.Duration(i+1) * 100 * time.Millisecond
				switch alg {
				case AlgFixedWindow, AlgSlidingLog:
					wantReset = time.Second
				case AlgSlidingWindow:
					wantReset = 2 * time.Second
				}
				assert.Equal(t, wantReset, d.ResetAfter, "reset after event %d", i)
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
			wantReset := time.Second // ten events' refill, or the window's end
			if alg == AlgSlidingWindow {
				wantReset = 2 * time.Second
			}
			assert.Equal(t, wantReset, d.ResetAfter, "a denial changes nothing")
			before, err := lim.AllowN(t0.Add(want-time.Nanosecond), 1)
			require.NoError(t, err)
			assert.False(t, before.Allowed, "one nanosecond early")
			after, err := lim.AllowN(t0.Add(want), 1)
			require.NoError(t, err)
			assert.True(t, after.Allowed, "at RetryAfter")
		})
	}
}

// ResetAfter, the reset a client is told (the RateLimit header's reset),
// is exact for every algorithm: after events spread in time, after a
// reservation booked ahead, and on a denial behind that reservation.
func TestLimiters_ResetAfter(t *testing.T) {
	ms := time.Millisecond
	ok := func(rem int, retry, reset time.Duration) Decision {
		return Decision{Allowed: true, Remaining: rem, RetryAfter: retry, ResetAfter: reset}
	}
	no := func(retry, reset time.Duration) Decision {
		return Decision{RetryAfter: retry, ResetAfter: reset}
	}
	// 2 per second, burst 2: an event costs 500ms of refill. The steps:
	// one event at 0, one at 300ms, a reservation at 300ms, an event
	// refused behind it, and one at 1.2s.
	at := []time.Duration{0, 300 * ms, 300 * ms, 300 * ms, 1200 * ms}
	bucket := []Decision{ // what was taken, refilled at 500ms a token; the reservation borrows 200ms ahead
		ok(1, 0, 500*ms), ok(0, 0, 700*ms), ok(0, 200*ms, 1200*ms), no(700*ms, 1200*ms), ok(0, 0, 800*ms),
	}
	want := map[Algorithm][]Decision{
		AlgTokenBucket: bucket,
		AlgGCRA:        bucket,
		// the pacer's reservation waits for the bucket to drain
		AlgLeakyBucket: {ok(1, 0, 500*ms), ok(0, 0, 700*ms), ok(0, 700*ms, 1200*ms), no(700*ms, 1200*ms), ok(0, 0, 800*ms)},
		// the window [0, 1s) resets at 1s; the reservation books [1s, 2s)
		AlgFixedWindow: {ok(1, 0, 1000*ms), ok(0, 0, 700*ms), ok(0, 700*ms, 1700*ms), no(700*ms, 1700*ms), ok(0, 0, 800*ms)},
		// the newest event leaves the window a second after it came
		AlgSlidingLog: {ok(1, 0, 1000*ms), ok(0, 0, 1000*ms), ok(0, 700*ms, 1700*ms), no(1000*ms, 1700*ms), no(100*ms, 800*ms)},
		// both windows age out at the end of the one after the current
		AlgSlidingWindow: {ok(1, 0, 2000*ms), ok(0, 0, 1700*ms), ok(0, 1200*ms, 2700*ms), no(1700*ms, 2700*ms), no(800*ms, 1800*ms)},
	}
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			l := Limit{Events: 2, Per: time.Second, Burst: 2}
			lim := newTest(t, alg, l)
			for i, w := range want[alg] {
				call := lim.AllowN
				if i == 2 {
					call = lim.ReserveN
				}
				d, err := call(t0.Add(at[i]), 1)
				require.NoError(t, err)
				w.Limit = l
				assert.Equal(t, w, d, "step %d at %v", i, at[i])
			}
		})
	}
}

// A request for more events than are left is denied, and the denial
// says how many are left: every algorithm counts the one spent event.
func TestLimiters_RemainingWhenDeniedForMore(t *testing.T) {
	l := Limit{Events: 4, Per: time.Second, Burst: 4}
	for _, alg := range Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			lim := newTest(t, alg, l)
			_, err := lim.AllowN(t0, 1)
			require.NoError(t, err)
			d, err := lim.AllowN(t0, 4)
			require.NoError(t, err)
			// A bucket waits for the one token spent; a window for its end,
			// and the sliding counter until the spent event weighs nothing.
			want := Decision{Limit: l, Remaining: 3, RetryAfter: 250 * time.Millisecond, ResetAfter: 250 * time.Millisecond}
			switch alg {
			case AlgFixedWindow, AlgSlidingLog:
				want.RetryAfter, want.ResetAfter = time.Second, time.Second
			case AlgSlidingWindow:
				want.RetryAfter, want.ResetAfter = 2*time.Second, 2*time.Second
			}
			assert.Equal(t, want, d)
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
			d, err := lim.AllowN(at, 1)
			require.NoError(t, err)
			if d.Allowed {
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

// With events spread over the window, the sliding log's RetryAfter is
// when the oldest event that must leave does: the first for one event,
// the second for two. Remaining counts only the events in the window.
func TestSlidingLog_RetryAfterSpreadEvents(t *testing.T) {
	ms := time.Millisecond
	l := Limit{Events: 3, Per: time.Second}
	lim, err := NewSlidingLog(l)
	require.NoError(t, err)
	for i, at := range []time.Duration{0, 200 * ms, 400 * ms} {
		d, err := lim.AllowN(t0.Add(at), 1)
		require.NoError(t, err)
		assert.Equal(t, Decision{Allowed: true, Limit: l, Remaining: 2 - i, ResetAfter: time.Second}, d, "event at %v", at)
	}
	for _, c := range []struct {
		at   time.Duration
		n    int
		want Decision
	}{
		{500 * ms, 1, Decision{Limit: l, RetryAfter: 500 * ms, ResetAfter: 900 * ms}}, // the event at 0 leaves at 1s
		{500 * ms, 2, Decision{Limit: l, RetryAfter: 700 * ms, ResetAfter: 900 * ms}}, // the one at 200ms at 1.2s
		{500 * ms, 3, Decision{Limit: l, RetryAfter: 900 * ms, ResetAfter: 900 * ms}},
		{1000 * ms, 2, Decision{Limit: l, Remaining: 1, RetryAfter: 200 * ms, ResetAfter: 400 * ms}}, // the event at 0 has left
		{1000 * ms, 1, Decision{Allowed: true, Limit: l, ResetAfter: time.Second}},
		{1300 * ms, 1, Decision{Allowed: true, Limit: l, ResetAfter: time.Second}}, // the event at 200ms has left
		{1300 * ms, 1, Decision{Limit: l, RetryAfter: 100 * ms, ResetAfter: time.Second}},
	} {
		d, err := lim.AllowN(t0.Add(c.at), c.n)
		require.NoError(t, err)
		assert.Equal(t, c.want, d, "%d events at %v", c.n, c.at)
	}
}

// Remaining counts only the events in the window ending now: an event
// exactly a window old has left it, even while the log still keeps it.
func TestSlidingLog_RemainingLeavesOldEvents(t *testing.T) {
	l := Limit{Events: 3, Per: time.Second}
	lim, err := NewSlidingLog(l)
	require.NoError(t, err)
	for _, c := range []struct {
		at        time.Duration
		remaining int
	}{{0, 2}, {500 * time.Millisecond, 1}, {time.Second, 1}, {time.Second, 0}} {
		d, err := lim.AllowN(t0.Add(c.at), 1)
		require.NoError(t, err)
		assert.Equal(t, Decision{Allowed: true, Limit: l, Remaining: c.remaining, ResetAfter: time.Second}, d, "at %v", c.at)
	}
}

// The log grows with the events in its window, not with its quota: a
// quota of 2⁴⁰ events costs nothing until events come, and as its ring
// grows and wraps the log still admits exactly what an unbounded list of
// admitted events would, with the same Remaining.
func TestSlidingLog_GrowsWithTheWindow(t *testing.T) {
	t.Run("doubling", func(t *testing.T) {
		lim, err := NewSlidingLog(Limit{Events: 100, Per: time.Hour})
		require.NoError(t, err)
		require.Empty(t, lim.s.log, "a log takes no room before its first event")
		for _, c := range []struct{ n, ring int }{{2, minLog}, {2, minLog}, {1, 2 * minLog}, {20, 25}, {75, 100}} {
			d, err := lim.AllowN(t0, c.n)
			require.NoError(t, err)
			require.True(t, d.Allowed)
			require.Len(t, lim.s.log, c.ring, "after %d more events", c.n)
		}
	})
	for _, events := range []int{1 << 40, 37} {
		t.Run(fmt.Sprint(events), func(t *testing.T) {
			l := Limit{Events: events, Per: time.Hour}
			lim, err := NewSlidingLog(l)
			require.NoError(t, err)
			var model []time.Time // every admitted event, one entry per event
			most := 0             // the most events a window ending at an admitted event held
			at := t0
			rng := rand.New(rand.NewPCG(3, uint64(events)))
			for i := range 4000 {
				// Requests ever closer together, from up to three minutes
				// to up to 20 s apart, and now and then a pause that lets
				// up to the whole window leave: the ring fills, drains,
				// wraps, and grows while it is wrapped.
				at = at.Add(time.Duration(rng.IntN(180-i/25)) * time.Second)
				if i%500 == 0 {
					at = at.Add(time.Duration(rng.IntN(120)) * time.Minute)
				}
				n := 1 + rng.IntN(3)
				inWindow := 0
				for _, e := range model {
					if at.Sub(e) < l.Per {
						inWindow++
					}
				}
				d, err := lim.AllowN(at, n)
				require.NoError(t, err)
				want := inWindow+n <= events
				require.Equal(t, want, d.Allowed, "event %d: %d events at %v with %d in the window", i, n, at, inWindow)
				if want {
					for range n {
						model = append(model, at)
					}
					assert.Equal(t, events-inWindow-n, d.Remaining, "event %d", i)
				}
				// The log drops only what left the window ending at its
				// newest event, so it holds at most the window's events
				// then and the n just logged.
				require.LessOrEqual(t, lim.s.size, most+n, "event %d", i)
				if want {
					most = max(most, inWindow+n)
				}
			}
			if events == 37 {
				require.Equal(t, events, most, "the quota must bind for the test to mean anything")
			}
			require.LessOrEqual(t, len(lim.s.log), min(events, 2*(most+3)), "the ring outgrew the events a window held")
		})
	}
}

// After a roll-over, the sliding counter weighs the previous window by
// the part of it the sliding window still covers: Remaining is the quota
// less that estimate, rounded down.
func TestSlidingWindow_RemainingAfterRollOver(t *testing.T) {
	ms := time.Millisecond
	l := Limit{Events: 10, Per: time.Second}
	lim, err := NewSlidingWindow(l)
	require.NoError(t, err)
	d, err := lim.AllowN(t0, 10)
	require.NoError(t, err)
	assert.Equal(t, Decision{Allowed: true, Limit: l, ResetAfter: 2 * time.Second}, d)
	for _, c := range []struct {
		at        time.Duration
		remaining int
		reset     time.Duration
	}{
		{1250 * ms, 1, 1750 * ms}, // 10×75% + 1 = 8.5
		{1500 * ms, 3, 1500 * ms}, // 10×50% + 2 = 7
		{1500 * ms, 2, 1500 * ms}, // 10×50% + 3 = 8
		{1900 * ms, 5, 1100 * ms}, // 10×10% + 4 = 5
		{2100 * ms, 5, 1900 * ms}, // the next window: 4×90% + 1 = 4.6
	} {
		d, err := lim.AllowN(t0.Add(c.at), 1)
		require.NoError(t, err)
		assert.Equal(t, Decision{Allowed: true, Limit: l, Remaining: c.remaining, ResetAfter: c.reset}, d, "at %v", c.at)
	}
	// Denied in a window with nothing counted yet, the previous window's
	// events are gone when the current one ends.
	lim, err = NewSlidingWindow(l)
	require.NoError(t, err)
	_, err = lim.AllowN(t0, 10)
	require.NoError(t, err)
	d, err = lim.AllowN(t0.Add(1050*ms), 10)
	require.NoError(t, err)
	assert.Equal(t, Decision{Limit: l, RetryAfter: 950 * ms, ResetAfter: 950 * ms}, d, "10×95% + 10 > 10")
}

// A fixed window denying more than is left says what is left of its own
// window, at the instant it starts as later, and nothing of a window
// booked ahead.
func TestFixedWindow_RemainingWhenDenied(t *testing.T) {
	l := Limit{Events: 3, Per: time.Second}
	w, err := NewFixedWindow(l)
	require.NoError(t, err)
	for _, at := range []time.Duration{0, 500 * time.Millisecond} {
		_, err := w.AllowN(t0.Add(time.Second+at), 1)
		require.NoError(t, err)
		d, err := w.AllowN(t0.Add(time.Second+at), 3)
		require.NoError(t, err)
		assert.Equal(t, Decision{Limit: l, Remaining: 3 - 1 - int(at/(500*time.Millisecond)), RetryAfter: time.Second - at, ResetAfter: time.Second - at}, d, "at %v into the window", at)
	}
	// 3 booked in the next window: denied now, nothing left of it to say.
	d, err := w.ReserveN(t0.Add(1500*time.Millisecond), 3)
	require.NoError(t, err)
	require.Equal(t, 500*time.Millisecond, d.RetryAfter)
	d, err = w.AllowN(t0.Add(1500*time.Millisecond), 1)
	require.NoError(t, err)
	assert.Equal(t, Decision{Limit: l, RetryAfter: 1500 * time.Millisecond, ResetAfter: 1500 * time.Millisecond}, d)
}

// A window counts up to its last instant, and the next starts empty at
// its very first, whether the last one filled or not.
func TestFixedWindow_NextWindowAtItsFirstInstant(t *testing.T) {
	l := Limit{Events: 2, Per: time.Second}
	for _, used := range []int{1, 2} {
		w, err := NewFixedWindow(l)
		require.NoError(t, err)
		d, err := w.AllowN(t0, used)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		d, err = w.AllowN(t0.Add(time.Second-1), 1)
		require.NoError(t, err)
		if used == 1 {
			assert.Equal(t, Decision{Allowed: true, Limit: l, ResetAfter: 1}, d, "last instant, 1 used")
		} else {
			assert.Equal(t, Decision{Limit: l, RetryAfter: 1, ResetAfter: 1}, d, "last instant, 2 used")
		}
		w, err = NewFixedWindow(l)
		require.NoError(t, err)
		_, err = w.AllowN(t0, used)
		require.NoError(t, err)
		d, err = w.AllowN(t0.Add(time.Second), 1)
		require.NoError(t, err)
		assert.Equal(t, Decision{Allowed: true, Limit: l, Remaining: 1, ResetAfter: time.Second}, d, "next window, %d used", used)
	}
}

// Windows are aligned to the Unix epoch on both sides of it: a window of
// a second runs from one whole second to the next, before 1970 too.
func TestWindowStart(t *testing.T) {
	const s = int64(time.Second)
	for _, c := range [][2]int64{
		{0, 0}, {1, 0}, {s - 1, 0}, {s, s}, {5*s + 7, 5 * s},
		{-1, -s}, {-s + 1, -s}, {-s, -s}, {-s - 1, -2 * s}, {-2 * s, -2 * s},
	} {
		assert.Equal(t, c[1], windowStart(c[0], s), "window of %d", c[0])
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
						d, err := lim.AllowN(t0, 1)
						if !assert.NoError(t, err) {
							return
						}
						if d.Allowed {
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

// Take fails at once, taking no slot, when its slot lies beyond the
// context's deadline, and returns ctx's error when ctx has ended.
func TestLeakyBucket_TakeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewLeakyBucket(Limit{Events: 10, Per: time.Second, Burst: 5})
		require.NoError(t, err)
		start := time.Now()
		at, err := b.Take(t.Context())
		require.NoError(t, err)
		assert.Equal(t, start, at, "the first slot is now")
		short, cancel := context.WithTimeout(t.Context(), 99*time.Millisecond)
		_, err = b.Take(short)
		cancel()
		require.ErrorIs(t, err, ErrLimited)
		assert.Equal(t, start, time.Now(), "refused at once")
		long, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		at, err = b.Take(long)
		cancel()
		require.NoError(t, err)
		assert.Equal(t, start.Add(100*time.Millisecond), at, "the refused Take took no slot")
		assert.Equal(t, at, time.Now())
		done, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = b.Take(done)
		require.ErrorIs(t, err, context.Canceled)
		at, err = b.Take(t.Context())
		require.NoError(t, err)
		assert.Equal(t, start.Add(200*time.Millisecond), at, "the cancelled Take took no slot")
	})
}

// The meter lets a burst of Burst through at once and then the rate.
func TestLeakyBucket_Meter(t *testing.T) {
	b, err := NewLeakyBucket(Limit{Events: 10, Per: time.Second, Burst: 3})
	require.NoError(t, err)
	for i := range 3 {
		d, err := b.AllowN(t0, 1)
		require.NoError(t, err)
		require.True(t, d.Allowed, "event %d of the burst", i)
	}
	d, err := b.AllowN(t0, 1)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	assert.Equal(t, 100*time.Millisecond, d.RetryAfter)
}

// The token bucket reports its tokens, negative after borrowing.
func TestTokenBucket_Tokens(t *testing.T) {
	b, err := NewTokenBucket(Limit{Events: 10, Per: time.Second, Burst: 4})
	require.NoError(t, err)
	assert.InDelta(t, 4, b.Tokens(t0), 1e-9)
	_, err = b.AllowN(t0, 3)
	require.NoError(t, err)
	assert.InDelta(t, 1, b.Tokens(t0), 1e-9)
	_, err = b.ReserveN(t0, 3)
	require.NoError(t, err)
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

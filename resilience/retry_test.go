package resilience

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBackoffDelayFormulas(t *testing.T) {
	ms := time.Millisecond
	base := Backoff{Base: 10 * ms, Max: 100 * ms}
	for _, c := range []struct {
		jitter Jitter
		retry  int
		prev   time.Duration
		u      float64
		want   time.Duration
	}{
		{JitterNone, 1, 0, 0.7, 10 * ms},
		{JitterNone, 3, 0, 0.7, 40 * ms},
		{JitterNone, 10, 0, 0.7, 100 * ms}, // capped
		{JitterFull, 3, 0, 0.5, 20 * ms},
		{JitterFull, 3, 0, 0, 0},
		{JitterEqual, 3, 0, 0, 20 * ms},
		{JitterEqual, 3, 0, 0.5, 30 * ms},
		{JitterDecorrelated, 1, 0, 0, 10 * ms},          // starts at base
		{JitterDecorrelated, 2, 20 * ms, 0.5, 35 * ms},  // base + u·(3·prev − base)
		{JitterDecorrelated, 9, 90 * ms, 0.9, 100 * ms}, // capped
	} {
		b := base
		b.Jitter = c.jitter
		assert.Equal(t, c.want, b.Delay(c.retry, c.prev, c.u), "%v retry %d prev %v u %v", c.jitter, c.retry, c.prev, c.u)
	}
	for _, j := range []Jitter{JitterNone, JitterFull, JitterEqual, JitterDecorrelated} {
		b := base
		b.Jitter = j
		assert.Equal(t, b.Delay(1, 0, 0.5), b.Delay(0, 0, 0.5), "%v: a retry number below 1 is the first retry", j)
		assert.Equal(t, b.Delay(1, 0, 0.5), b.Delay(-3, 0, 0.5), "%v", j)
	}
	assert.Equal(t, "decorrelated", JitterDecorrelated.String())
	assert.Equal(t, "full", Jitter(0).String(), "the zero value is full jitter")
}

func TestBackoffBadInput(t *testing.T) {
	for name, b := range map[string]Backoff{
		"negative base":   {Base: -time.Millisecond},
		"max below base":  {Base: time.Second, Max: time.Millisecond},
		"multiplier < 1":  {Multiplier: 0.5},
		"jitter too big":  {Jitter: Jitter(9)},
		"jitter negative": {Jitter: Jitter(-1)},
	} {
		err := b.Validate()
		assert.ErrorIs(t, err, ErrInvalidConfig, name)
		_, err = NewRetry[int](RetryOptions{MaxAttempts: 3, Backoff: b})
		assert.ErrorIs(t, err, ErrInvalidConfig, name)
	}
	err := Backoff{Base: time.Second, Max: time.Millisecond}.Validate()
	assert.ErrorContains(t, err, "Max 1ms is below Base 1s", "names both values")
	err = Backoff{Max: 50 * time.Millisecond}.Validate()
	assert.ErrorContains(t, err, "Max 50ms is below Base 100ms (the default)", "says the base is the default")
	err = Backoff{Max: -time.Second}.Validate()
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "-1s")
	assert.ErrorContains(t, Backoff{Jitter: Jitter(9)}.Validate(), "Jitter 9")
	_, err = NewRetry[int](RetryOptions{MaxAttempts: 3, MaxElapsed: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	// The bounds themselves are valid.
	for name, b := range map[string]Backoff{
		"max equal to base": {Base: time.Second, Max: time.Second},
		"multiplier 1":      {Multiplier: 1},
		"first jitter":      {Jitter: JitterFull},
		"last jitter":       {Jitter: JitterDecorrelated},
	} {
		assert.NoError(t, b.Validate(), name)
	}
}

// MaxAttempts has no default: zero and negative values are errors that
// name the value, never a silent 3.
func TestRetryMaxAttemptsIsRequired(t *testing.T) {
	for _, n := range []int{0, -1, -100} {
		r, err := NewRetry[int](RetryOptions{Name: "charge", MaxAttempts: n})
		assert.Nil(t, r)
		require.ErrorIs(t, err, ErrInvalidConfig, "MaxAttempts %d", n)
		assert.ErrorContains(t, err, fmt.Sprintf("got %d", n))
		assert.ErrorContains(t, err, `"charge"`)
	}
	r, err := NewRetry[int](RetryOptions{MaxAttempts: 1})
	require.NoError(t, err)
	fn, calls := flaky(5, errBoom)
	_, err = r.Execute(t.Context(), fn)
	assert.ErrorIs(t, err, ErrRetriesExhausted)
	assert.Equal(t, 1, *calls, "1 attempt: no retry")
}

// flaky fails its first n calls.
func flaky(n int, err error) (func(context.Context) (int, error), *int) {
	calls := 0
	return func(context.Context) (int, error) {
		calls++
		if calls <= n {
			return 0, err
		}
		return calls, nil
	}, &calls
}

func TestRetrySucceedsAfterBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events []RetryEvent
		r, err := NewRetry[int](RetryOptions{
			MaxAttempts: 3,
			Backoff:     Backoff{Base: 10 * time.Millisecond, Jitter: JitterNone},
			OnRetry:     func(e RetryEvent) { events = append(events, e) },
		})
		require.NoError(t, err)
		fn, calls := flaky(2, errBoom)
		start := time.Now()
		v, err := r.Execute(t.Context(), fn)
		require.NoError(t, err)
		assert.Equal(t, 3, v)
		assert.Equal(t, 3, *calls)
		assert.Equal(t, 30*time.Millisecond, time.Since(start), "10 ms + 20 ms of backoff")
		require.Len(t, events, 2)
		assert.Equal(t, 20*time.Millisecond, events[1].Delay)
		assert.Equal(t, RetryStats{Calls: 1, Attempts: 3, Retries: 2}, r.Stats())
	})
}

func TestRetryGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := NewRetry[int](RetryOptions{Name: "get", MaxAttempts: 3, Backoff: Backoff{Base: time.Millisecond}})
		require.NoError(t, err)
		fn, calls := flaky(10, errBoom)
		_, err = r.Execute(t.Context(), fn)
		assert.ErrorIs(t, err, ErrRetriesExhausted)
		assert.ErrorIs(t, err, errBoom, "the last attempt's error is kept")
		assert.Contains(t, err.Error(), `retry "get"`)
		assert.Equal(t, 3, *calls)

		// Not retryable: one attempt, the error as is.
		perm := errors.New("bad request")
		r2, err := NewRetry[int](RetryOptions{MaxAttempts: 3, RetryIf: func(err error) bool { return !errors.Is(err, perm) }})
		require.NoError(t, err)
		fn, calls = flaky(10, perm)
		_, err = r2.Execute(t.Context(), fn)
		assert.Equal(t, perm, err)
		assert.Equal(t, 1, *calls)

		// MaxElapsed: base 1 s, limit 2.5 s → attempts at 0, 1 s; the
		// next would start at 3 s.
		r3, err := NewRetry[int](RetryOptions{MaxAttempts: 10, MaxElapsed: 2500 * time.Millisecond, Backoff: Backoff{Base: time.Second, Jitter: JitterNone}})
		require.NoError(t, err)
		fn, calls = flaky(10, errBoom)
		_, err = r3.Execute(t.Context(), fn)
		assert.ErrorIs(t, err, ErrRetriesExhausted)
		assert.Equal(t, 2, *calls)

		// A retry that would start exactly at MaxElapsed still goes: limit
		// 3 s → attempts at 0, 1 s and 3 s.
		r4, err := NewRetry[int](RetryOptions{MaxAttempts: 10, MaxElapsed: 3 * time.Second, Backoff: Backoff{Base: time.Second, Jitter: JitterNone}})
		require.NoError(t, err)
		fn, calls = flaky(10, errBoom)
		start := time.Now()
		_, err = r4.Execute(t.Context(), fn)
		assert.ErrorIs(t, err, ErrRetriesExhausted)
		assert.Equal(t, 3, *calls)
		assert.Equal(t, 3*time.Second, time.Since(start))
		assert.Equal(t, RetryStats{Calls: 1, Attempts: 3, Retries: 2, Exhausted: 1}, r4.Stats())
	})
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := NewRetry[int](RetryOptions{MaxAttempts: 3, Backoff: Backoff{Base: time.Millisecond, Jitter: JitterNone}})
		require.NoError(t, err)
		fn, _ := flaky(1, &RetryAfterError{Err: errBoom, After: 2 * time.Second})
		start := time.Now()
		_, err = r.Execute(t.Context(), fn)
		require.NoError(t, err)
		assert.Equal(t, 2*time.Second, time.Since(start))
	})
}

func TestRetrySleepHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := NewRetry[int](RetryOptions{MaxAttempts: 3, Backoff: Backoff{Base: time.Hour, Jitter: JitterNone}})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		fn, calls := flaky(10, errBoom)
		start := time.Now()
		_, err = r.Execute(ctx, fn)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, errBoom)
		assert.Equal(t, time.Second, time.Since(start))
		assert.Equal(t, 1, *calls)
	})
}

func TestRetryBudgetCapsAmplification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget, err := NewBudget(BudgetOptions{Ratio: 0.1, MinPerWindow: -1})
		require.NoError(t, err)
		r, err := NewRetry[int](RetryOptions{MaxAttempts: 3, Budget: budget, Backoff: Backoff{Base: time.Millisecond}})
		require.NoError(t, err)
		attempts := 0
		down := func(context.Context) (int, error) { attempts++; return 0, errBoom }
		budgetErrs := 0
		for range 100 {
			_, err := r.Execute(t.Context(), down)
			if errors.Is(err, ErrBudgetExhausted) {
				budgetErrs++
				assert.ErrorIs(t, err, errBoom)
			}
		}
		// Without a budget: 300 attempts. With 10%: 100 + about 10.
		assert.LessOrEqual(t, attempts, 111)
		assert.GreaterOrEqual(t, attempts, 105)
		assert.Greater(t, budgetErrs, 80)
		st := budget.Stats()
		assert.Equal(t, 100.0, st.Requests)
		assert.LessOrEqual(t, st.Extras, 0.1*100+1)

		// Requests age out of the window.
		time.Sleep(11 * time.Second)
		assert.Zero(t, budget.Stats().Requests)
	})
}

func TestBudgetBadInput(t *testing.T) {
	for _, r := range []float64{0, -0.1, 1.5, math.NaN(), math.Inf(1)} { // 0: the ratio is required
		b, err := NewBudget(BudgetOptions{Ratio: r})
		assert.Nil(t, b)
		require.ErrorIs(t, err, ErrInvalidConfig, "ratio %v", r)
		assert.ErrorContains(t, err, fmt.Sprintf("got %v", r))
	}
	_, err := NewBudget(BudgetOptions{Ratio: 0.1, Window: -time.Second})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewBudget(BudgetOptions{Ratio: 0.1, Buckets: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// The ratio and MinPerWindow add up and mean what they say: a small ratio
// leaves MinPerWindow as the allowance of a quiet client, and 1 is one
// retry per request.
func TestBudgetRatioBounds(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	small := must(NewBudget(BudgetOptions{Ratio: 0.001, MinPerWindow: 2}))
	for range 100 {
		small.RecordRequestAt(now)
	}
	granted := 0
	for range 10 {
		if small.TryExtraAt(now) {
			granted++
		}
	}
	assert.Equal(t, 2, granted, "0.1 of an attempt from the ratio, 2 from MinPerWindow")

	one := must(NewBudget(BudgetOptions{Ratio: 1, MinPerWindow: -1}))
	for range 5 {
		one.RecordRequestAt(now)
	}
	granted = 0
	for range 10 {
		if one.TryExtraAt(now) {
			granted++
		}
	}
	assert.Equal(t, 5, granted, "ratio 1: one extra attempt per request")
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"120":                           2 * time.Minute,
		" 0 ":                           0,
		"Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second,
		"Wed, 31 Dec 2025 23:00:00 GMT": 0,
		"9223372036":                    9223372036 * time.Second, // the longest a Duration holds
	} {
		got, ok := ParseRetryAfter(in, now)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-5", "soon", "1.5", "99999999999999999999", "9223372037"} {
		_, ok := ParseRetryAfter(in, now)
		assert.False(t, ok, in)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Thu, 01 Jan 2026 00:00:30 GMT", "", "-1", "9223372036"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if !ok && d != 0 {
			t.Fatalf("rejected %q but returned %v", s, d)
		}
		if d < 0 {
			t.Fatalf("negative wait %v for %q", d, s)
		}
	})
}

func TestRetryAfterFromResponse(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	resp := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"3"}}}
	err := RetryAfterFromResponse(resp, errBoom, now)
	var ra *RetryAfterError
	require.ErrorAs(t, err, &ra)
	assert.Equal(t, 3*time.Second, ra.After)
	assert.ErrorIs(t, err, errBoom)
	assert.Contains(t, err.Error(), "retry after 3s")

	err = RetryAfterFromResponse(&http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"1"}}}, nil, now)
	require.ErrorAs(t, err, &ra)
	assert.Contains(t, err.Error(), "429")

	assert.Equal(t, errBoom, RetryAfterFromResponse(&http.Response{StatusCode: 500, Header: http.Header{"Retry-After": {"1"}}}, errBoom, now))
	assert.Equal(t, errBoom, RetryAfterFromResponse(&http.Response{StatusCode: 503}, errBoom, now))
	assert.NoError(t, RetryAfterFromResponse(nil, nil, now))
}

// Every delay lies in the range its jitter promises, whatever the inputs.
func FuzzBackoffDelay(f *testing.F) {
	f.Add(int64(5e6), int64(2e9), 2.0, 0, 3, int64(0), 0.5)
	f.Add(int64(1), int64(1), 1.0, 3, 60, int64(1e9), 0.999)
	f.Fuzz(func(t *testing.T, base, maxD int64, mult float64, jitter, retry int, prev int64, u float64) {
		b := Backoff{Base: time.Duration(base), Max: time.Duration(maxD), Multiplier: mult, Jitter: Jitter(jitter)}
		if b.Validate() != nil || b.Base == 0 || b.Max == 0 || b.Multiplier == 0 || !(u >= 0 && u < 1) || prev < 0 {
			return
		}
		d := b.Delay(retry, time.Duration(prev), u)
		if d < 0 || d > b.Max {
			t.Fatalf("%+v retry %d prev %v u %v: delay %v outside [0, %v]", b, retry, time.Duration(prev), u, d, b.Max)
		}
		if b.Jitter == JitterDecorrelated && d < b.Base {
			t.Fatalf("decorrelated delay %v below base %v", d, b.Base)
		}
	})
}

package resilience

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every policy refuses a nil function with ErrInvalidConfig and runs fn's
// result through unchanged on success.
func TestEveryPolicyContract(t *testing.T) {
	policies := map[string]Policy[int]{
		"breaker":  must(NewCircuitBreaker[int](BreakerOptions{})),
		"retry":    must(NewRetry[int](RetryOptions{MaxAttempts: 3})),
		"timeout":  must(NewTimeout[int](TimeoutOptions{Name: "t", Timeout: time.Second})),
		"fallback": must(NewFallback(FallbackOptions[int]{})),
		"hedge":    must(NewHedge[int](HedgeOptions{})),
		"bulkhead": Guarded[int](must(NewBulkhead(BulkheadOptions{MaxConcurrent: 1}))),
		"throttle": Guarded[int](must(NewAdaptiveThrottle(ThrottleOptions{}))),
		"shedder":  Guarded[int](must(NewLoadShedder(ShedderOptions{}))),
		"pipeline": must(NewPipeline[int](must(NewFallback(FallbackOptions[int]{})), must(NewRetry[int](RetryOptions{MaxAttempts: 3})))),
	}
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			_, err := p.Execute(t.Context(), nil)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			v, err := p.Execute(t.Context(), func(context.Context) (int, error) { return 9, nil })
			require.NoError(t, err)
			assert.Equal(t, 9, v)
		})
	}
}

// Every Guard lets a call through when it has no reason not to and pairs
// Enter with Exit.
func TestEveryGuardContract(t *testing.T) {
	guards := map[string]Guard{
		"bulkhead": must(NewBulkhead(BulkheadOptions{MaxConcurrent: 1})),
		"throttle": must(NewAdaptiveThrottle(ThrottleOptions{})),
		"shedder":  must(NewLoadShedder(ShedderOptions{InitialLimit: 1, MaxLimit: 1})),
	}
	for name, g := range guards {
		t.Run(name, func(t *testing.T) {
			for range 3 { // Exit gives back whatever Enter took
				p, err := g.Enter(t.Context())
				require.NoError(t, err)
				assert.Equal(t, t.Context(), p.Ctx)
				g.Exit(p, nil)
			}
		})
	}
}

// The documented bad input — zero or negative attempts, a max delay
// below the base delay, jitter outside its range, a budget ratio outside
// (0, 1], a nil function, a bulkhead of size 0, a timeout of 0, a count
// window with no rate — each gives an error that
// wraps ErrInvalidConfig and names the offending value, never a panic or a
// silent default.
func TestBadInputGivesClearErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		err  func() error
		want string // part of the message naming the value
	}{
		{"retry attempts 0", func() error { _, err := NewRetry[int](RetryOptions{}); return err }, "MaxAttempts must be set to at least 1 (1 disables retries), got 0"},
		{"retry attempts -3", func() error { _, err := NewRetry[int](RetryOptions{MaxAttempts: -3}); return err }, "got -3"},
		{"max delay below base", func() error {
			_, err := NewRetry[int](RetryOptions{MaxAttempts: 2, Backoff: Backoff{Base: time.Second, Max: 10 * time.Millisecond}})
			return err
		}, "Max 10ms is below Base 1s"},
		{"jitter above range", func() error { return Backoff{Jitter: JitterDecorrelated + 1}.Validate() }, "Jitter 4"},
		{"jitter below range", func() error { return Backoff{Jitter: -1}.Validate() }, "Jitter -1"},
		{"budget ratio 1.01", func() error { _, err := NewBudget(BudgetOptions{Ratio: 1.01}); return err }, "Ratio must be set in (0, 1], got 1.01"},
		{"budget ratio unset", func() error { _, err := NewBudget(BudgetOptions{}); return err }, "Ratio must be set in (0, 1], got 0"},
		{"timeout unset", func() error { _, err := NewTimeout[int](TimeoutOptions{Name: "db"}); return err }, `timeout "db" Timeout must be set to a positive duration, got 0s`},
		{"count window without a rate", func() error { _, err := NewCountWindow(CountWindowOptions{Size: 10, MinCalls: 5}); return err }, "needs a FailureRate or a SlowCallRate"},
		{"count window slow rate 2", func() error {
			_, err := NewCountWindow(CountWindowOptions{Size: 10, SlowCallRate: 2, MinCalls: 5})
			return err
		}, "SlowCallRate must be in (0, 1], got 2"},
		{"budget ratio -0.5", func() error { _, err := NewBudget(BudgetOptions{Ratio: -0.5}); return err }, "got -0.5"},
		{"bulkhead size 0", func() error { _, err := NewBulkhead(BulkheadOptions{MaxConcurrent: 0, Name: "db"}); return err }, `bulkhead "db" MaxConcurrent must be set to at least 1, got 0`},
		{"bulkhead size -1", func() error { _, err := NewBulkheads(BulkheadOptions{MaxConcurrent: -1}); return err }, "got -1"},
		{"nil guard", func() error { _, err := Guarded[int](nil).Execute(t.Context(), ok); return err }, "nil Guard"},
		{"fallback Value and Func", func() error {
			_, err := NewFallback(FallbackOptions[int]{Value: 7, Func: func(context.Context, error) (int, error) { return 8, nil }})
			return err
		}, "fallback: Value 7 and Func are both set"},
		{"fallback slice Value and Func", func() error {
			_, err := NewFallback(FallbackOptions[[]int]{Value: []int{}, Func: func(context.Context, error) ([]int, error) { return nil, nil }})
			return err
		}, "Value [] and Func are both set"},
		{"nil pipeline policy", func() error { _, err := NewPipeline[int](must(NewFallback(FallbackOptions[int]{})), nil); return err }, "policy 1 is nil"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = c.err() })
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.ErrorContains(t, err, c.want)
			assert.True(t, strings.HasPrefix(err.Error(), "resilience: "), err.Error())
		})
	}
}

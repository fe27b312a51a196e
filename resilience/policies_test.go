package resilience

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every policy refuses a nil function with ErrInvalidConfig and runs fn's
// result through unchanged on success.
func TestEveryPolicyContract(t *testing.T) {
	policies := map[string]Policy[int]{
		"breaker":        must(NewCircuitBreaker[int](BreakerOptions{})),
		"shared-breaker": must(NewSharedBreaker[int](NewMemoryBreakerStore(), SharedBreakerOptions{Name: "x"})),
		"retry":          must(NewRetry[int](RetryOptions{})),
		"timeout":        must(NewTimeout[int]("t", time.Second)),
		"fallback":       NewFallbackValue(0, nil),
		"hedge":          must(NewHedge[int](HedgeOptions{})),
		"bulkhead":       Guarded[int](must(NewBulkhead(1, BulkheadOptions{}))),
		"throttle":       Guarded[int](must(NewAdaptiveThrottle(ThrottleOptions{}))),
		"shedder":        Guarded[int](must(NewLoadShedder(ShedderOptions{}))),
		"fault":          Guarded[int](must(NewFaultInjector(FaultOptions{}))),
		"pipeline":       must(NewPipeline[int](NewFallbackValue(0, nil), must(NewRetry[int](RetryOptions{})))),
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
	var sw Switches
	guards := map[string]Guard{
		"bulkhead": must(NewBulkhead(1, BulkheadOptions{})),
		"throttle": must(NewAdaptiveThrottle(ThrottleOptions{})),
		"shedder":  must(NewLoadShedder(ShedderOptions{InitialLimit: 1, MaxLimit: 1})),
		"fault":    must(NewFaultInjector(FaultOptions{})),
		"switch":   must(sw.Register("feature", false)),
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

package main

import (
	"context"
	"fmt"
	"time"
)

// The helpers every experiment file uses to format and look up its numbers.

// pct formats a fraction as a percentage with one decimal.
func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// ms converts a duration to milliseconds, the unit of the charts' axes.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile returns the p-quantile (p in [0, 1]) of sorted durations, or
// 0 when there are none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// find returns the first point that match accepts, or the zero point.
func find[P any](points []P, match func(P) bool) P {
	for _, p := range points {
		if match(p) {
			return p
		}
	}
	var zero P
	return zero
}

// measureEach measures every item in order and returns the points, stopping
// when ctx ends or at the first error, which it prefixes with the item's
// name.
func measureEach[I, P any](ctx context.Context, items []I, name func(I) string, measure func(I) (P, error)) ([]P, error) {
	out := make([]P, 0, len(items))
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := measure(it)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name(it), err)
		}
		out = append(out, p)
	}
	return out, nil
}

// choose returns yes when ok holds and no otherwise: a note's wording that
// follows the numbers.
func choose(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

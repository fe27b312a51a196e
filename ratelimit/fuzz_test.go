package ratelimit

import (
	"testing"
	"time"
)

// FuzzLimiters drives every algorithm with an arbitrary sequence of
// (time step, n) requests and checks the promise each one makes:
//
//   - no algorithm panics, and every decision's numbers are in range;
//   - the sliding log never holds more than Events in any window of Per;
//   - the fixed window never admits more than Events per aligned window;
//   - the buckets never admit more than Burst + rate × t in any span t;
//   - a denied decision always says how long to wait, and waiting that
//     long makes the same request fit (when nothing else happens).
func FuzzLimiters(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0, 1, 200, 3, 7, 2, 255, 1})
	f.Add([]byte{10, 4, 10, 4, 10, 4, 10, 4, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		limit := Limit{Events: 4, Per: 100 * time.Millisecond, Burst: 4}
		for _, alg := range Algorithms {
			lim := newTest(t, alg, limit)
			type ev struct {
				at time.Time
				n  int
			}
			var admitted []ev
			now := t0
			for i := 0; i+1 < len(ops); i += 2 {
				now = now.Add(time.Duration(ops[i]) * time.Millisecond)
				n := 1 + int(ops[i+1])%4
				d, err := lim.AllowN(now, n)
				if err != nil {
					t.Fatalf("%v: AllowN(%d): %v", alg, n, err)
				}
				if d.Remaining < 0 || d.Remaining > limit.Events || d.RetryAfter < 0 || d.ResetAfter < 0 {
					t.Fatalf("%v: decision out of range: %+v", alg, d)
				}
				if d.Allowed {
					admitted = append(admitted, ev{now, n})
					continue
				}
				if d.RetryAfter == 0 {
					t.Fatalf("%v: denied with no retry time: %+v", alg, d)
				}
				// Probe (without committing) that the wait suffices.
				if p := lim.take(now.Add(d.RetryAfter).UnixNano(), int64(n), noWait, false); !p.Allowed {
					t.Fatalf("%v: still denied after RetryAfter %v: %+v", alg, d.RetryAfter, p)
				}
			}
			for i := range admitted {
				sum := 0
				for j := i; j < len(admitted); j++ {
					span := admitted[j].at.Sub(admitted[i].at)
					sum += admitted[j].n
					switch alg {
					case AlgSlidingLog:
						if span < limit.Per && sum > limit.Events {
							t.Fatalf("sliding log: %d events within %v", sum, span)
						}
					case AlgFixedWindow:
						if windowStart(admitted[i].at.UnixNano(), int64(limit.Per)) == windowStart(admitted[j].at.UnixNano(), int64(limit.Per)) && sum > limit.Events {
							t.Fatalf("fixed window: %d events in one window", sum)
						}
					case AlgTokenBucket, AlgGCRA, AlgLeakyBucket:
						if maxN := limit.Burst + int(span/(limit.Per/time.Duration(limit.Events))); sum > maxN {
							t.Fatalf("%v: %d events within %v, more than burst + rate (%d)", alg, sum, span, maxN)
						}
					}
				}
			}
		}
	})
}

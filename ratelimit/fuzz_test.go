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

// FuzzTokenBucketIsGCRA drives a TokenBucket (tokens and a last-refill
// time) and a GCRA (one timestamp) with the same arbitrary requests —
// AllowN and ReserveN of any n, at instants that may step back as well as
// forward — and requires the same decision from both, field by field: the
// two forms are one bucket.
func FuzzTokenBucketIsGCRA(f *testing.F) {
	f.Add(uint8(3), uint8(7), []byte{0, 1, 0, 1, 0, 1, 0, 1, 200, 3, 7, 2, 255, 1})
	f.Add(uint8(1), uint8(1), []byte{1, 0x81, 1, 0x81, 250, 0x83, 3, 2})
	f.Add(uint8(20), uint8(200), []byte{9, 9, 0x40, 0x45, 2, 0xc4, 77, 19})
	f.Fuzz(func(t *testing.T, burst, events uint8, ops []byte) {
		limit := Limit{Events: 1 + int(events), Per: 100 * time.Millisecond, Burst: 1 + int(burst)}
		tb, err := NewTokenBucket(limit)
		if err != nil {
			t.Fatal(err)
		}
		g, err := NewGCRA(limit)
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		for i := 0; i+1 < len(ops); i += 2 {
			// The low 7 bits step the clock by up to 127 ms, back when the
			// top bit is set (another goroutine's earlier reading).
			step := time.Duration(ops[i]&0x7f) * time.Millisecond
			if ops[i]&0x80 != 0 {
				step = -step / 4
			}
			now = now.Add(step)
			n := 1 + int(ops[i+1]&0x3f)%limit.Burst
			call, gAt, tbAt := "AllowN", g.AllowN, tb.AllowN
			if ops[i+1]&0x40 != 0 {
				call, gAt, tbAt = "ReserveN", g.ReserveN, tb.ReserveN
			}
			want, werr := gAt(now, n)
			got, gerr := tbAt(now, n)
			if werr != nil || gerr != nil {
				t.Fatalf("op %d: %s(%d): errors %v and %v", i/2, call, n, gerr, werr)
			}
			if got != want {
				t.Fatalf("op %d: %s(%d) at %v:\ntoken bucket %+v\ngcra         %+v", i/2, call, n, now.Sub(t0), got, want)
			}
		}
	})
}

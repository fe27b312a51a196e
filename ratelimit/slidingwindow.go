package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"
)

// SlidingWindow is the sliding window counter: it keeps the counts of the
// current and the previous fixed window and estimates the events in the
// window of length Per ending at t as
//
//	previous × (fraction of the previous window still covered) + current
//
// admitting an event when the estimate plus the event stays within Events.
// This is the algorithm Cloudflare and Redis-backed gateways use: two
// counters per key, and no boundary burst.
//
// Guide (Security Considerations → Rate Limiting, "Sliding Window:
// Time-based rate limiting"): pros — smooth like the log at the cost of a
// fixed window (16 bytes per key), no double burst at the boundary; cons —
// approximate: it assumes the previous window's events were evenly
// spread, so it may admit a little more or less than an exact log
// (Cloudflare measured 0.003% of requests wrongly allowed or limited).
// Use case: the default for per-key API limits.
//
// A SlidingWindow is safe for concurrent use.
type SlidingWindow struct {
	p   params
	now func() time.Time

	mu sync.Mutex
	s  slidingState[int64] // guarded by mu
}

var _ Limiter = (*SlidingWindow)(nil)

// NewSlidingWindow returns a sliding window counter admitting about
// limit.Events in any window of limit.Per.
func NewSlidingWindow(limit Limit) (*SlidingWindow, error) {
	if err := limit.validate(false); err != nil {
		return nil, err
	}
	return &SlidingWindow{p: params{limit: limit}, now: time.Now, s: freshSlidingWindow[int64]()}, nil
}

// Limit returns the limit the window enforces.
func (w *SlidingWindow) Limit() Limit { return w.p.limit }

// Allow is shorthand for AllowN(now, 1) at time.Now(). The
// zero SlidingWindow allows nothing.
func (w *SlidingWindow) Allow() bool {
	if w.now == nil {
		return false
	}
	return w.take(w.now().UnixNano(), 1, noWait, true).Allowed
}

// AllowN reports whether n more events fit in the estimated window ending
// at now and counts them if so.
func (w *SlidingWindow) AllowN(now time.Time, n int) (Decision, error) {
	return decide(w.take, w.p.limit, w.p.limit.Events, now, n, noWait)
}

// ReserveN counts n events at the earliest time they fit and returns in
// RetryAfter how long until then.
func (w *SlidingWindow) ReserveN(now time.Time, n int) (Decision, error) {
	return decide(w.take, w.p.limit, w.p.limit.Events, now, n, anyWait)
}

// Wait is shorthand for WaitN(ctx, 1).
func (w *SlidingWindow) Wait(ctx context.Context) error { return w.WaitN(ctx, 1) }

// WaitN blocks until n events fit; see [Limiter].
func (w *SlidingWindow) WaitN(ctx context.Context, n int) error {
	return waitN(ctx, w.take, w.p.limit.Events, w.now, n)
}

func (w *SlidingWindow) take(now, n, maxWait int64, commit bool) Decision {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s.take(&w.p, now, n, maxWait, commit)
}

// slidingState is a sliding window's state for one key: the two
// counters as of one window start. A [SlidingWindow] counts in int64; a
// [Keyed] key counts in uint32 when the quota fits, so that its slot is
// 8 bytes smaller. The counters never exceed the quota: an event is
// counted only in a window it fits in. (One generic type rather than a
// compact copy converted to and from the wide one: a Decision, of five
// fields, passes through a function in memory, and the conversion's
// extra call would copy it on every keyed decision.)
type slidingState[C int64 | uint32] struct {
	start      int64 // Unix ns start of the current window
	prev, curr C     // events in the window before it and in it
}

// freshSlidingWindow returns windows that ended long ago.
func freshSlidingWindow[C int64 | uint32]() slidingState[C] { return slidingState[C]{start: never} }

// roll moves the state forward to the window holding t.
func (s *slidingState[C]) roll(t, size int64) {
	if t < s.start+size { // in the current window (t is never before it)
		return
	}
	if ws := windowStart(t, size); ws == s.start+size {
		s.start, s.prev, s.curr = ws, s.curr, 0
	} else { // a whole window or more has passed
		s.start, s.prev, s.curr = ws, 0, 0
	}
}

// estimate returns the weighted count of the window ending at t, which
// must lie in the current window.
func (s *slidingState[C]) estimate(t, size int64) float64 {
	covered := float64(s.start+size-t) / float64(size)
	return float64(s.prev)*covered + float64(s.curr)
}

// fit returns the earliest instant at or after t when n more events fit,
// rolling s to it.
func (s *slidingState[C]) fit(t, n, size, quota int64) int64 {
	s.roll(t, size)
	if int64(s.curr)+n > quota { // not in this window: the next starts with prev = curr
		t = s.start + size
		s.roll(t, size)
	}
	// The test only skips the arithmetic when it cannot move t (the
	// bound is at or before t then): >= for >, + for − or prev >= 0
	// would change no decision.
	if room := float64(quota - int64(s.curr) - n); s.prev > 0 && s.estimate(t, size)-float64(s.curr) > room {
		// prev × (start+size−t')/size ≤ room  ⇔  t' ≥ start + size − room×size/prev
		t = max(t, s.start+size-int64(math.Floor(room*float64(size)/float64(s.prev))))
		s.roll(t, size)
	}
	return t
}

func (w *slidingState[C]) take(p *params, now, n, maxWait int64, commit bool) Decision {
	size, quota := int64(p.limit.Per), int64(p.limit.Events)
	s := *w
	// A now before the current window (skew, or behind a reservation) is
	// judged at the window's start, which only counts it for longer.
	at := s.fit(max(now, w.start), n, size, quota)
	delay := at - now
	if delay > maxWait {
		cur := *w
		t := max(now, w.start)
		cur.roll(t, size)
		return Decision{Limit: p.limit, Remaining: int(max(float64(quota)-cur.estimate(t, size), 0)),
			RetryAfter: dur(delay), ResetAfter: dur(cur.resetAt(size) - now)}
	}
	s.curr += C(n)
	if commit {
		*w = s
	}
	remaining := 0
	if delay == 0 {
		remaining = int(max(float64(quota)-s.estimate(at, size), 0))
	}
	return Decision{Allowed: true, Limit: p.limit, Remaining: remaining, RetryAfter: dur(delay), ResetAfter: dur(s.resetAt(size) - now)}
}

// resetAt returns when both counters will have aged out.
func (s *slidingState[C]) resetAt(size int64) int64 {
	switch {
	case s.curr > 0:
		return s.start + 2*size
	case s.prev > 0:
		return s.start + size
	}
	return s.start
}

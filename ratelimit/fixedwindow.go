package ratelimit

import (
	"context"
	"sync"
	"time"
)

// FixedWindow is the fixed window counter: time is cut into windows of
// length Per aligned to the Unix epoch (so every instance and Redis agree
// on the boundaries), and each window admits Events.
//
// Guide (Security Considerations → Rate Limiting, "Sliding Window:
// Time-based rate limiting" — the fixed window is its cheap ancestor):
// pros — one counter per key, trivially distributed (INCR + EXPIRE), a
// quota users understand ("1,000 per day, resets at midnight UTC"); cons —
// up to twice the limit passes in one window's length around a boundary
// (Events at the end of one window, Events at the start of the next),
// and clients that know the boundary stampede at it. Use case: coarse
// quotas (per day, per month) where the boundary burst does not matter.
//
// Windows only move forward: a call whose now lies before the current
// window (clock skew between goroutines, or a reservation that booked the
// next window) is treated as arriving in a full window and waits for the
// current one.
//
// A FixedWindow is safe for concurrent use.
type FixedWindow struct {
	p   params
	now func() time.Time

	mu sync.Mutex
	s  fixedWindowState // guarded by mu
}

var _ Limiter = (*FixedWindow)(nil)

// NewFixedWindow returns a fixed window limiter admitting limit.Events per
// window of limit.Per.
func NewFixedWindow(limit Limit) (*FixedWindow, error) {
	if err := limit.validate(false); err != nil {
		return nil, err
	}
	return &FixedWindow{p: params{limit: limit}, now: time.Now, s: freshFixedWindow()}, nil
}

// Limit returns the limit the window enforces.
func (w *FixedWindow) Limit() Limit { return w.p.limit }

// Allow is shorthand for AllowN(now, 1) at time.Now(). The
// zero FixedWindow allows nothing.
func (w *FixedWindow) Allow() bool {
	if w.now == nil {
		return false
	}
	return w.take(w.now().UnixNano(), 1, noWait, true).Allowed
}

// AllowN reports whether n events fit in now's window and counts them if so.
func (w *FixedWindow) AllowN(now time.Time, n int) (Decision, error) {
	return decide(w.take, w.p.limit, w.p.limit.Events, now, n, noWait)
}

// ReserveN counts n events in the first window with room for them and
// returns in RetryAfter how long until that window starts.
func (w *FixedWindow) ReserveN(now time.Time, n int) (Decision, error) {
	return decide(w.take, w.p.limit, w.p.limit.Events, now, n, anyWait)
}

// Wait is shorthand for WaitN(ctx, 1).
func (w *FixedWindow) Wait(ctx context.Context) error { return w.WaitN(ctx, 1) }

// WaitN blocks until n events fit in a window; see [Limiter].
func (w *FixedWindow) WaitN(ctx context.Context, n int) error {
	return waitN(ctx, w.take, w.p.limit.Events, w.now, n)
}

func (w *FixedWindow) take(now, n, maxWait int64, commit bool) Decision {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s.take(&w.p, now, n, maxWait, commit)
}

// fixedWindowState is a fixed window's state for one key.
type fixedWindowState struct {
	start int64 // Unix ns start of the current window
	count int64 // events charged to it
}

// freshFixedWindow returns a window that ended long ago.
func freshFixedWindow() fixedWindowState { return fixedWindowState{start: never} }

// windowStart returns the start of the window of length size holding t.
func windowStart(t, size int64) int64 {
	s := t - t%size
	if t < 0 && t%size != 0 { // (t <= 0 alike: 0%size is 0)
		s -= size
	}
	return s
}

func (w *fixedWindowState) take(p *params, now, n, maxWait int64, commit bool) Decision {
	size, quota := int64(p.limit.Per), int64(p.limit.Events)
	start, count := w.start, w.count
	if now >= start+size { // past the state's window (start is a window's start, or never)
		start, count = windowStart(now, size), 0
	}
	at := max(now, start)
	if count+n > quota { // this window is full: the next one is empty
		start, count, at = start+size, 0, start+size
	}
	delay := at - now
	if delay > maxWait {
		remaining := int64(0)
		if w.start <= now { // denied in now's own window: what is left of it
			remaining = quota - w.count
		}
		// Denied, the state's window (now's, or one booked ahead) is full:
		// the quota is whole again when it ends.
		return Decision{Limit: p.limit, Remaining: int(max(remaining, 0)), RetryAfter: dur(delay), ResetAfter: dur(w.start + size - now)}
	}
	if commit {
		w.start, w.count = start, count+n
	}
	remaining := int64(0)
	if start <= now {
		remaining = quota - count - n
	}
	return Decision{Allowed: true, Limit: p.limit, Remaining: int(remaining), RetryAfter: dur(delay), ResetAfter: dur(start + size - now)}
}

package ratelimit

import (
	"context"
	"sync"
	"time"
)

// SlidingLog is the sliding window log: it keeps the timestamp of every
// admitted event of the last window and admits an event at t when fewer
// than Events timestamps lie in (t − Per, t]. It is exact: no window of
// length Per, wherever it starts, ever holds more than Events events.
//
// Guide (Security Considerations → Rate Limiting, "Sliding Window:
// Time-based rate limiting"): pros — exact, no boundary burst, precise
// retry-after (when the oldest event leaves the window); cons — memory
// and work grow with the limit: 8 bytes per allowed event per key, so a
// key that uses its 1,000/hour holds 8 KB where a counter costs 16
// bytes. Use case: low limits where exactness matters (login attempts,
// password resets, SMS sends, expensive endpoints).
//
// A SlidingLog is safe for concurrent use.
type SlidingLog struct {
	p   params
	now func() time.Time

	mu sync.Mutex
	s  slidingLogState // guarded by mu
}

var _ Limiter = (*SlidingLog)(nil)

// NewSlidingLog returns an exact sliding window limiter admitting
// limit.Events in any window of limit.Per. Its log grows with the events
// in the window, to at most limit.Events timestamps (8 bytes each).
func NewSlidingLog(limit Limit) (*SlidingLog, error) {
	if err := limit.validate(false); err != nil {
		return nil, err
	}
	return &SlidingLog{p: params{limit: limit}, now: time.Now}, nil
}

// Limit returns the limit the log enforces.
func (l *SlidingLog) Limit() Limit { return l.p.limit }

// Allow is shorthand for AllowN(now, 1) at time.Now(). The
// zero SlidingLog allows nothing.
func (l *SlidingLog) Allow() bool {
	if l.now == nil {
		return false
	}
	return l.take(l.now().UnixNano(), 1, noWait, true).Allowed
}

// AllowN reports whether n more events fit in the window ending at now and
// logs them if so.
func (l *SlidingLog) AllowN(now time.Time, n int) (Decision, error) {
	return decide(l.take, l.p.limit, l.p.limit.Events, now, n, noWait)
}

// ReserveN logs n events at the earliest time they fit and returns in
// RetryAfter how long until then.
func (l *SlidingLog) ReserveN(now time.Time, n int) (Decision, error) {
	return decide(l.take, l.p.limit, l.p.limit.Events, now, n, anyWait)
}

// Wait is shorthand for WaitN(ctx, 1).
func (l *SlidingLog) Wait(ctx context.Context) error { return l.WaitN(ctx, 1) }

// WaitN blocks until n events fit in the window; see [Limiter].
func (l *SlidingLog) WaitN(ctx context.Context, n int) error {
	return waitN(ctx, l.take, l.p.limit.Events, l.now, n)
}

func (l *SlidingLog) take(now, n, maxWait int64, commit bool) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.take(&l.p, now, n, maxWait, commit)
}

// slidingLogState is a sliding log's state for one key.
type slidingLogState struct {
	log  []int64 // ring of admitted timestamps, Unix ns, oldest at head; grown by reserve
	head int
	size int
}

// minLog is the length of a log's first ring.
const minLog = 4

// at returns the i-th oldest timestamp, i < len(log).
func (l *slidingLogState) at(i int) int64 { return l.log[l.wrap(l.head+i)] }

// wrap returns the ring index of position i < 2×len(log): one compare
// where i % len(log) would cost a division.
func (l *slidingLogState) wrap(i int) int {
	if i >= len(l.log) {
		i -= len(l.log)
	}
	return i
}

// reserve makes room for n more timestamps, which the quota must allow:
// a ring without the room is replaced by one twice as long (at least
// size + n, at most quota) holding the timestamps in order from its
// start. So a log costs memory for the events its window holds, not for
// its quota.
func (l *slidingLogState) reserve(n, quota int) {
	need := l.size + n
	if need <= len(l.log) {
		return
	}
	grown := make([]int64, min(max(need, 2*len(l.log), minLog), quota))
	for i := range l.size {
		grown[i] = l.at(i)
	}
	l.log, l.head = grown, 0
}

// expire drops timestamps at or before t − window. It saves work, not
// decisions: take skips what is left outside the window and drops the
// oldest timestamps to make room, so that < for <= here, >= 0 for > 0
// (an empty log's newest, its t, lies below every timestamp) or an
// expire that drops nothing would decide alike, but would scan up to
// Events stale timestamps at every call.
func (l *slidingLogState) expire(t, window int64) {
	for l.size > 0 && l.at(0) <= t-window {
		l.head = l.wrap(l.head + 1)
		l.size--
	}
}

// push appends n copies of t. It requires that the ring has room.
func (l *slidingLogState) push(t int64, n int) {
	for range n {
		l.log[l.wrap(l.head+l.size)] = t
		l.size++
	}
}

func (l *slidingLogState) take(p *params, now, n, maxWait int64, commit bool) Decision {
	window, quota := int64(p.limit.Per), p.limit.Events
	// Drop only what is stale for certain: a now in the future (a Multi
	// charging a reservation, a probe) must not forget events that still
	// count at the present, which is at least the newest timestamp.
	l.expire(min(now, l.newest()), window)
	skip := 0 // timestamps kept but outside the window ending at now
	// (Counting one past the log, skip <= size, changes no decision: when
	// every timestamp is outside the window, no event is over either way.)
	for skip < l.size && l.at(skip) <= now-window {
		skip++
	}
	at := now
	if over := l.size - skip + int(n) - quota; over > 0 {
		// The over-th oldest event in the window must leave it first.
		at = l.at(skip+over-1) + window
	}
	delay := at - now
	if delay > maxWait {
		return Decision{Limit: p.limit, Remaining: quota - (l.size - skip), RetryAfter: dur(delay), ResetAfter: dur(l.newest() + window - now)}
	}
	if !commit {
		return Decision{Allowed: true, Limit: p.limit, RetryAfter: dur(delay)}
	}
	// Make room by dropping the oldest timestamps, all of which have left
	// the window by at. Until at, the log then reads full, which only
	// errs towards refusing. (Dropping none when drop is 0 is a no-op, so
	// >= 0 would do as well.)
	if drop := l.size + int(n) - quota; drop > 0 {
		l.head = l.wrap(l.head + drop)
		l.size -= drop
	}
	l.reserve(int(n), quota)
	// Timestamps stay sorted: an event admitted now behind a reservation
	// booked later is logged at the reservation's time, which only makes it
	// count for longer.
	l.push(max(at, l.newest()), int(n))
	remaining := 0
	if delay == 0 {
		remaining = quota - l.size
		// (The newest timestamp, at or after now, ends the loop: i <= size
		// would do as well.)
		for i := 0; i < l.size && l.at(i) <= now-window; i++ {
			remaining++
		}
	}
	return Decision{Allowed: true, Limit: p.limit, Remaining: remaining, RetryAfter: dur(delay), ResetAfter: dur(l.newest() + window - now)}
}

// newest returns the latest timestamp, or MinInt64/2 when the log is
// empty.
func (l *slidingLogState) newest() int64 {
	if l.size == 0 {
		return -1 << 62
	}
	return l.at(l.size - 1)
}

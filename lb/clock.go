package lb

import (
	"context"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// CoarseClock is a clock that a goroutine of its own reads every tick, for
// balancers whose picks need the time ([PeakEWMA] always; every algorithm
// while an ejection or a slow start is pending, to see it end). Give it to
// them in [Options.Clock]: a pick then loads the last value instead of
// reading the monotonic clock. Busy event-driven proxies meet the same need
// the same way: nginx reads the clock once per event-loop turn
// (ngx_current_msec), HAProxy keeps now_ms, otter offers a CoarseClock.
//
// What each choice costs per pick: without a CoarseClock, a pick that needs
// the time reads the monotonic clock (as much as the rest of a peak-EWMA
// pick); with one, an atomic load, and the clock's goroutine wakes every
// tick whether or not anything picks. Run BenchmarkBalancer_Pick (algo
// peak-ewma beside peak-ewma-coarse) on your machine to see both. The
// value lags the time by up to a tick plus the scheduler's delay: against
// a decay time of seconds a millisecond is nothing, but a balancer on a
// CoarseClock times requests only to the tick, so report
// [Result.Latency] (the [Proxy] and [Failover] do).
//
// One CoarseClock can serve any number of balancers. Close it once they
// are no longer used: its value then stops, and so would their ejections
// and slow starts. The zero value is not usable; build one with
// [NewCoarseClock].
type CoarseClock struct {
	base time.Time    // the monotonic reading the values count from
	now  atomic.Int64 // nanoseconds since base, at the last tick

	stop chan struct{}
	once sync.Once
	done chan struct{} // closed when the goroutine ended
}

// NewCoarseClock starts a CoarseClock that reads the time every tick (a
// millisecond is the usual choice). Close stops it.
func NewCoarseClock(tick time.Duration) (*CoarseClock, error) {
	if tick <= 0 {
		return nil, configErr(nil, "coarse clock tick %v (want > 0, such as 1ms)", tick)
	}
	c := &CoarseClock{base: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run(tick)
	return c, nil
}

func (c *CoarseClock) run(tick time.Duration) {
	defer close(c.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.now.Store(int64(time.Since(c.base)))
		case <-c.stop:
			return
		}
	}
}

// Now returns the time of the last tick (the time of NewCoarseClock before
// the first one), with a monotonic clock reading.
func (c *CoarseClock) Now() time.Time {
	if c == nil {
		return time.Time{}
	}
	return c.base.Add(time.Duration(c.now.Load()))
}

// Close stops the clock's goroutine and waits until it has ended or ctx
// is done; in the second case it returns an error wrapping ctx.Err().
// Calling it again waits, under the new ctx, for the same end.
func (c *CoarseClock) Close(ctx context.Context) error {
	if c == nil || c.stop == nil {
		return nil // the zero clock runs nothing
	}
	c.once.Do(func() { close(c.stop) })
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("lb: coarse clock: its goroutine has not ended: %w", ctx.Err())
	}
}

// decayShift returns the base-2 logarithm of the step in which latency
// averages decay: the largest power of two of nanoseconds at most
// 1/4096 of the decay time (2.1ms for the default 10s). Decay is applied
// once per step, so the Done calls within one step that bring no new peak
// write nothing.
func decayShift(tau time.Duration) uint {
	q := uint64(tau) / 4096
	if q == 0 {
		return 0
	}
	return uint(bits.Len64(q) - 1)
}

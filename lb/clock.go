package lb

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Peak EWMA's cost decays with time, so its picks need the time (as do
// every algorithm's picks while an ejection or a slow start is pending,
// to see it end). Reading
// the monotonic clock costs a few tens of nanoseconds, as much as the rest
// of a pick, and only a coarse value is needed: against a decay time of
// seconds, a millisecond is nothing. Busy event-driven proxies meet the
// same need the same way: nginx reads the clock once per event-loop turn
// (ngx_current_msec), HAProxy keeps now_ms.
//
// A balancer therefore keeps a coarse clock, refreshed every millisecond by
// a goroutine of its own, but only while it is busy enough for that to
// save work: waking a goroutine every millisecond costs more than it saves
// below some tens of thousands of picks a second. Picks read the real
// clock until a sample of them shows the rate above coarseMinRate; they
// then start the refresher and read its value, never more than a tick and
// the scheduler's delay old. The refresher stops itself, and picks go
// back to the real clock, when the rate falls below the threshold, when
// picks no longer need the time, or when Done calls stop reporting
// latencies (see [Result.Latency]). A balancer with an Options.Now clock
// never starts it.

const (
	// coarseTick is the refresh period of the coarse clock.
	coarseTick = time.Millisecond
	// coarseMinRate is the pick rate, per tick, above which the coarse
	// clock saves more clock reads than its refresher costs.
	coarseMinRate = 64
	// coarseCheck is how many ticks the refresher counts picks over
	// before it decides to go on.
	coarseCheck = 8
	// rateSample: every rateSample-th pick of a backend estimates the
	// balancer's pick rate from the time the last rateSample took.
	rateSample = 64
)

// coarseClock is a balancer's coarse clock: nanoseconds on the balancer's
// clock, valid while running is set.
type coarseClock struct {
	now     atomic.Int64
	running atomic.Bool
	// selfTimed is set once a peak-EWMA Done reports no latency for a
	// request picked on the coarse clock: picks then read the real clock,
	// to time their requests.
	selfTimed atomic.Bool
}

// pickClock returns the time for a pick and whether it was read from the
// real clock (false: the coarse clock's value).
func (c *core) pickClock() (int64, bool) {
	if c.set.Now == nil && c.coarse.running.Load() && !c.timesRequests() {
		return c.coarse.now.Load(), false
	}
	return c.clock(), true
}

// timesRequests reports that picks must read the real clock because the
// balancer times requests itself (see coarseClock.selfTimed).
func (c *core) timesRequests() bool { return c.measure && c.coarse.selfTimed.Load() }

// roughClock returns the coarse clock's value if it runs, else the real
// clock's: for decisions that a millisecond does not change.
func (c *core) roughClock() int64 {
	if c.set.Now == nil && c.coarse.running.Load() {
		return c.coarse.now.Load()
	}
	return c.clock()
}

// sampleRate runs on every rateSample-th pick of e that read the real
// clock at now: it starts the coarse clock when the last rateSample picks
// of e, times the n backends in rotation, took less than rateSample·n
// ticks' worth of coarseMinRate.
func (c *core) sampleRate(e *endpoint, now int64, n int) {
	if c.set.Now != nil || c.timesRequests() {
		return
	}
	prev := e.sampledAt.Swap(now)
	if prev == 0 {
		return
	}
	if now-prev > rateSample*int64(n)*int64(coarseTick)/coarseMinRate {
		return
	}
	// Publish a fresh value before the flag, so that a pick that sees the
	// flag reads it; never move the clock back (a refresher may be
	// running already).
	for {
		old := c.coarse.now.Load()
		if now <= old || c.coarse.now.CompareAndSwap(old, now) {
			break
		}
	}
	if c.coarse.running.CompareAndSwap(false, true) {
		go c.refreshCoarse()
	}
}

// refreshCoarse is the coarse clock's refresher. It stops when the
// balancer made fewer than coarseMinRate picks per tick over the last
// coarseCheck ticks, or when its picks no longer read it: they must time
// requests precisely, or (for algorithms that read the clock only while an
// ejection or a slow start is pending) nothing is pending any more.
func (c *core) refreshCoarse() {
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	last := c.picksMade()
	for i := 1; ; i++ {
		<-t.C
		c.coarse.now.Store(int64(time.Since(c.epoch)))
		if i%coarseCheck != 0 {
			continue
		}
		made := c.picksMade()
		needed := (c.measure && !c.timesRequests()) || c.snap.Load().hasWake
		if made-last < coarseCheck*coarseMinRate || !needed {
			c.coarse.running.Store(false)
			return
		}
		last = made
	}
}

// picksMade returns the number of picks of the backends in rotation.
func (c *core) picksMade() uint64 {
	var n uint64
	for _, e := range c.snap.Load().active {
		n += e.requests.Load()
	}
	return n
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

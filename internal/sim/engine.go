package sim

import (
	"container/heap"
	"fmt"
	"time"
)

// Epoch is the wall-clock instant that virtual time 0 maps to in
// [Engine.Clock], so code that takes a `Now func() time.Time` can run on
// virtual time.
var Epoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// Engine is a discrete-event simulator on virtual time. Events are
// functions scheduled at an instant; [Engine.Run] pops them in time order
// (ties in scheduling order) and advances the clock to each one, so idle
// time costs nothing and a simulated hour of traffic runs as fast as its
// events can be processed.
//
// An Engine is not safe for concurrent use: events run one at a time on the
// goroutine that calls Run, and may schedule further events. The zero value
// is an empty engine at time 0, ready to use.
type Engine struct {
	now     time.Duration
	seq     uint64
	q       eventQueue
	stopped bool
	err     error
	events  uint64
}

type event struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = event{}
	*q = old[:len(old)-1]
	return e
}

// Now returns the current virtual time since the start of the simulation.
func (e *Engine) Now() time.Duration { return e.now }

// Clock returns a function reporting virtual time as wall-clock time
// ([Epoch] plus [Engine.Now]), for components that accept a Now option.
func (e *Engine) Clock() func() time.Time {
	return func() time.Time { return Epoch.Add(e.now) }
}

// Schedule runs fn after delay of virtual time. A negative delay is an
// error: the event is dropped and [Engine.Run] returns the error.
func (e *Engine) Schedule(delay time.Duration, fn func()) {
	if delay < 0 {
		e.fail(fmt.Errorf("%w: negative event delay %v at t=%v", ErrInvalid, delay, e.now))
		return
	}
	e.At(e.now+delay, fn)
}

// At runs fn at virtual time t. A time in the past is an error: the event
// is dropped and [Engine.Run] returns the error.
func (e *Engine) At(t time.Duration, fn func()) {
	if t < e.now {
		e.fail(fmt.Errorf("%w: event at t=%v is before the current time %v", ErrInvalid, t, e.now))
		return
	}
	if fn == nil {
		e.fail(fmt.Errorf("%w: nil event function at t=%v", ErrInvalid, t))
		return
	}
	e.seq++
	heap.Push(&e.q, event{at: t, seq: e.seq, fn: fn})
}

func (e *Engine) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// Run processes events in time order until the queue is empty, the next
// event lies after until, or [Engine.Stop] is called. The clock ends at
// until if it was reached, or at the last event otherwise. It returns the
// first scheduling error, if any.
func (e *Engine) Run(until time.Duration) error {
	e.stopped = false
	for len(e.q) > 0 && !e.stopped && e.err == nil {
		if e.q[0].at > until {
			break
		}
		ev := heap.Pop(&e.q).(event)
		e.now = ev.at
		e.events++
		ev.fn()
	}
	if e.err == nil && !e.stopped && e.now < until && until != Forever {
		e.now = until
	}
	return e.err
}

// Forever passed to [Engine.Run] runs until no events remain.
const Forever = time.Duration(1<<63 - 1)

// Stop makes Run return after the current event.
func (e *Engine) Stop() { e.stopped = true }

// Pending returns the number of scheduled events.
func (e *Engine) Pending() int { return len(e.q) }

// Processed returns the number of events run so far.
func (e *Engine) Processed() uint64 { return e.events }

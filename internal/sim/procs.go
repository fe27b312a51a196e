package sim

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrStopped is what a process's blocking call returns when [Procs.Run]
// ends it: the events ran out while the process was still waiting.
var ErrStopped = errors.New("sim: simulation stopped")

// Procs runs goroutines as processes on an [Engine]'s virtual time, so that
// code which blocks — a resilience policy's Execute, an HTTP handler — runs
// unchanged in a simulation. A process may block only in the primitives of
// Procs ([Procs.Sleep], [Procs.Wait], [Procs.Call], a context made by
// [Procs.WithTimeout]); each parks the process and hands control back to
// the engine, and an event — a timer, another process — wakes it.
//
// Exactly one goroutine, the engine's or one process, runs at any moment,
// and every hand-over goes through a channel, so a run is race-free and as
// deterministic as the engine: the same seed gives the same events in the
// same order.
//
// Procs is not safe for concurrent use, and a process must never block on
// anything else (a channel, a real timer, a lock held by a parked
// process): the engine would wait for it forever. Every goroutine it starts
// has ended when [Procs.Run] returns.
type Procs struct {
	e *Engine
	// yield is how the running process hands control back to the engine:
	// it parked or finished.
	yield    chan struct{}
	parked   map[*proc]uint64 // parked processes, by park order
	seq      uint64
	stopping bool
	err      error
}

type proc struct {
	resume chan struct{}
	woken  bool
}

// NewProcs returns a process runtime on e's virtual time.
func NewProcs(e *Engine) *Procs {
	return &Procs{e: e, yield: make(chan struct{}), parked: map[*proc]uint64{}}
}

// Go starts fn as a new process at the current virtual instant, after the
// event or process that calls it has yielded.
func (r *Procs) Go(fn func()) {
	r.e.Schedule(0, func() {
		go func() {
			fn()
			r.yield <- struct{}{}
		}()
		<-r.yield
	})
}

// Wait parks the calling process until the wake function handed to
// register is called — by an event or another process — or until ctx ends
// (a ctx whose Done is nil, such as context.Background, never ends; any
// other must come from [Procs.WithTimeout]). It returns false, at once,
// when the runtime is stopping, and true otherwise. A wake after the
// process went on is ignored.
func (r *Procs) Wait(ctx context.Context, register func(wake func())) bool {
	if r.stopping {
		return false
	}
	var vc *virtualCtx
	if ctx.Done() != nil {
		c, ok := ctx.(*virtualCtx)
		if !ok {
			r.fail(fmt.Errorf("sim: a process waits on a %T, which does not end on virtual time", ctx))
			return false
		}
		if c.err != nil {
			return true
		}
		vc = c
	}
	p := &proc{resume: make(chan struct{})}
	wake := func() {
		if p.woken {
			return
		}
		p.woken = true
		r.e.Schedule(0, func() { r.resume(p) })
	}
	register(wake)
	var stop func() bool
	if vc != nil {
		stop = vc.AfterFunc(wake)
	}
	r.seq++
	r.parked[p] = r.seq
	r.yield <- struct{}{}
	<-p.resume
	if stop != nil {
		stop()
	}
	return !r.stopping
}

// resume runs a parked process and waits until it yields again.
func (r *Procs) resume(p *proc) {
	if _, ok := r.parked[p]; !ok {
		return
	}
	delete(r.parked, p)
	p.resume <- struct{}{}
	<-r.yield
}

// Sleep waits d of virtual time or until ctx ends, and returns ctx's error
// or, when the runtime stopped the process, [ErrStopped]. It has the shape
// of the Sleep options that take a context.
func (r *Procs) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !r.Wait(ctx, func(wake func()) { r.e.Schedule(max(d, 0), wake) }) {
		return ErrStopped
	}
	return ctx.Err()
}

// Call sends a request that serve answers in a process of its own, and
// waits for the answer or for ctx to end. The server is not told when its
// client gives up: like a real one it finishes the abandoned request.
func (r *Procs) Call(ctx context.Context, serve func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var (
		answered bool
		answer   error
		notify   func()
	)
	r.Go(func() {
		answer = serve()
		answered = true
		if notify != nil {
			notify()
		}
	})
	if !r.Wait(ctx, func(wake func()) { notify = wake }) {
		return ErrStopped
	}
	if answered {
		return answer
	}
	return ctx.Err()
}

// WithTimeout derives a context that ends with context.DeadlineExceeded
// after d of virtual time, or when parent ends; parent must come from
// WithTimeout or never end. Contexts the standard library derives from it
// end synchronously, on the goroutine that runs, rather than through a
// goroutine of their own.
func (r *Procs) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	c := &virtualCtx{parent: parent, deadline: Epoch.Add(r.e.Now() + d), done: make(chan struct{})}
	var stopParent func() bool
	if parent.Done() != nil {
		pc, ok := parent.(*virtualCtx)
		switch {
		case !ok:
			r.fail(fmt.Errorf("sim: a virtual deadline under a %T, which does not end on virtual time", parent))
		case pc.err != nil:
			c.cancel(pc.err)
		default:
			if pc.deadline.Before(c.deadline) {
				c.deadline = pc.deadline
			}
			stopParent = pc.AfterFunc(func() { c.cancel(pc.err) })
		}
	}
	r.e.Schedule(d, func() { c.cancel(context.DeadlineExceeded) })
	return c, func() {
		c.cancel(context.Canceled)
		if stopParent != nil {
			stopParent()
		}
	}
}

// Stopping reports whether [Procs.Run] is ending the processes left
// parked: a process that sees it should return without doing more.
func (r *Procs) Stopping() bool { return r.stopping }

func (r *Procs) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Run runs the engine until no event is left, then ends every process
// still parked, in the order they parked (their waits return false), and
// returns the engine's error or the first misuse: a process that waited on
// a context which does not end on virtual time.
func (r *Procs) Run() error {
	if err := r.e.Run(Forever); err != nil {
		return err
	}
	r.stopping = true
	for len(r.parked) > 0 {
		var first *proc
		for p, seq := range r.parked {
			if first == nil || seq < r.parked[first] {
				first = p
			}
		}
		r.resume(first)
	}
	return r.err
}

// virtualCtx is a context that ends on virtual time. It implements
// AfterFunc, so contexts the standard library derives from it are
// cancelled synchronously rather than by a goroutine of their own.
type virtualCtx struct {
	parent   context.Context
	deadline time.Time
	done     chan struct{}
	err      error
	after    []*afterFunc
}

type afterFunc struct {
	f       func()
	stopped bool
}

func (c *virtualCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *virtualCtx) Done() <-chan struct{}       { return c.done }
func (c *virtualCtx) Err() error                  { return c.err }
func (c *virtualCtx) Value(key any) any           { return c.parent.Value(key) }

// AfterFunc arranges for f to run when c ends, on the goroutine that ends
// it; stop unregisters f and reports whether it had not run yet.
func (c *virtualCtx) AfterFunc(f func()) (stop func() bool) {
	if c.err != nil {
		f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.after = append(c.after, a)
	return func() bool {
		was := !a.stopped
		a.stopped = true
		return was && c.err == nil
	}
}

func (c *virtualCtx) cancel(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
	after := c.after
	c.after = nil
	for _, a := range after {
		if !a.stopped {
			a.stopped = true
			a.f()
		}
	}
}

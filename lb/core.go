package lb

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Balancer is the interface every algorithm of this package implements, so
// callers swap algorithms by changing one constructor. All implementations
// are safe for concurrent use: Pick and Done run lock-free or under a short
// per-balancer lock (named in each algorithm's doc), and the backend set
// can change while traffic flows.
//
// Build a balancer with its constructor ([NewRoundRobin], [NewP2C], ...).
// The zero value of an algorithm's type has no backends: its methods
// return an error wrapping [ErrInvalidConfig] at once, and Stats and
// Backends return nothing.
type Balancer interface {
	// Pick chooses a backend for req among those in rotation. It returns
	// [ErrNoHealthyBackend] when none is, [ErrAtCapacity] when all are at
	// capacity, or ctx's error. The caller must call [Pick.Done] once.
	Pick(ctx context.Context, req Request) (Pick, error)
	// Add adds a backend; it enters rotation at once (through slow start
	// if configured).
	Add(b Backend) error
	// Remove removes a backend at once; requests in flight to it may still
	// report their results.
	Remove(addr string) error
	// Drain takes a backend out of rotation for new requests while those in
	// flight finish; watch its InFlight in [Balancer.Stats], then Remove it.
	Drain(addr string) error
	// SetWeight changes a backend's weight (a finite number > 0).
	SetWeight(addr string, weight float64) error
	// SetHealthy records the verdict of an active health check: an
	// unhealthy backend leaves rotation, a healthy one returns.
	SetHealthy(addr string, healthy bool) error
	// Update replaces the backend set with backends (as from service
	// discovery): new addresses are added, missing ones removed, and
	// existing ones keep their counters and health.
	Update(backends []Backend) error
	// Backends returns the configured backends, in the order added.
	Backends() []Backend
	// Stats returns a snapshot of every backend's counters and state.
	Stats() Stats
}

// Stats is a snapshot of a balancer.
type Stats struct {
	// Backends lists every backend in the order added.
	Backends []BackendStats
	// InRotation is the number of backends Pick chooses from.
	InRotation int
	// Panic reports that too few backends are healthy and all of them are
	// in rotation (see [Options.PanicThreshold]).
	Panic bool
}

// BackendStats is one backend's counters and state.
type BackendStats struct {
	Addr   string
	Zone   string
	Weight float64
	State  State
	// InFlight is the number of picks not yet Done.
	InFlight int64
	// Requests and Failures count picks and failed results since the
	// backend was added.
	Requests, Failures uint64
	// Latency is a moving average of the latencies reported through
	// [Pick.Done]: for [PeakEWMA] its time-decayed, peak-sensitive cost
	// figure; for the other algorithms a plain exponential moving average
	// (each new report weighs 10%) that costs no clock read. Zero before
	// the first report.
	Latency time.Duration
	// Ejections counts outlier ejections.
	Ejections int
}

// algorithm builds the picker of one algorithm over the backends in
// rotation. build runs under the balancer's lock whenever the rotation
// changes; the picker it returns is immutable except for its own
// synchronised state.
type algorithm interface {
	build(active []*endpoint, c *core) (picker, error)
	// affinity reports that the algorithm maps keys to backends, so slow
	// start must not re-pick.
	affinity() bool
}

// picker chooses one backend of those in rotation; now is the balancer's
// clock when the balancer needed it (0 otherwise). It may return nil when
// nothing fits (Geo with every zone at capacity).
type picker interface {
	pick(req Request, now int64) *endpoint
}

// endpoint is a backend and its live state. Hot counters sit on their own
// cache line so that picks on neighbouring backends do not contend.
type endpoint struct {
	b      Backend       // immutable, except that b.Weight is only read under core.mu
	weight atomic.Uint64 // float64 bits of the current weight

	// A pick adds to requests and its Done to completed, so a request costs
	// one atomic add on each side; in flight is their difference.
	_         [64]byte
	requests  atomic.Uint64
	completed atomic.Uint64
	failures  atomic.Uint64
	_         [64 - 24]byte

	ewma      atomic.Uint64 // float64 bits: latency average in ns
	stamp     atomic.Int64  // decay step (clock >> core.shift) the average was last decayed to
	sampledAt atomic.Int64  // clock of the last pick rate sample (see sampleRate)

	consecutive     atomic.Int64
	winStart        atomic.Int64
	winReq, winFail atomic.Uint64

	rampOn    atomic.Bool
	rampStart atomic.Int64

	// guarded by core.mu
	draining, unhealthy, ejected bool
	ejectedUntil                 int64
	ejections                    int // ejection-time multiplier
	ejectTotal                   int
	lastEjection                 int64
	state                        State
	reason                       string // why the next state change happens
}

func (e *endpoint) weightNow() float64 { return math.Float64frombits(e.weight.Load()) }

// inflight returns the number of picks not yet Done. completed is read
// first: it can only have grown by the time requests is read, so the
// difference is never negative, and it is exact whenever no pick or Done
// runs concurrently.
func (e *endpoint) inflight() int64 {
	done := e.completed.Load()
	return int64(e.requests.Load() - done)
}

// latencyAt returns the latency average decayed to step (the clock
// shifted right by core.shift), as Finagle's peak-EWMA reads it.
func (e *endpoint) latencyAt(step int64, tau float64) float64 {
	v := math.Float64frombits(e.ewma.Load())
	if v == 0 {
		return 0
	}
	if td := step - e.stamp.Load(); td > 0 {
		v *= decay(float64(td) / tau)
	}
	return v
}

// decay returns e^-x for x ≥ 0; below 0.01 (a few milliseconds against a
// decay time of seconds, the common case at high request rates) a
// second-order Taylor series, accurate to 2e-7, saves the exponential.
func decay(x float64) float64 {
	if x < 0.01 {
		return 1 - x + x*x/2
	}
	return math.Exp(-x)
}

// latencyAlpha is the weight of a new observation in the clock-free
// latency average of algorithms that do not pick by latency.
const latencyAlpha = 0.1

// average folds rtt into a plain exponential moving average, without
// reading the clock: Stats get a latency figure for free.
func (e *endpoint) average(rtt float64) {
	for {
		old := e.ewma.Load()
		cur := math.Float64frombits(old)
		next := rtt
		if cur != 0 {
			next = cur + latencyAlpha*(rtt-cur)
		}
		if e.ewma.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// observe folds rtt, finished at decay step step, into the peak EWMA: a
// slower observation replaces the average at once, a faster one pulls it
// down with the weight of the time since the last step. tau is the decay
// time in steps. It is lock-free: the Done that moves the stamp to a new
// step applies that step's decay, by compare-and-swap, and the average is
// replaced by compare-and-swap; within a step, a Done that brings no new
// peak writes nothing.
func (e *endpoint) observe(rtt float64, step int64, tau float64) {
	w := 1.0
	if last := e.stamp.Load(); step > last && e.stamp.CompareAndSwap(last, step) {
		w = decay(float64(step-last) / tau)
	}
	for {
		old := e.ewma.Load()
		cur := math.Float64frombits(old)
		next := rtt
		if rtt <= cur {
			next = cur*w + rtt*(1-w)
		}
		if next == cur || e.ewma.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// snapshot is the immutable view Pick works on.
type snapshot struct {
	active  []*endpoint
	picker  picker
	panic   bool
	wake    int64 // clock value at which an ejection or ramp ends
	hasWake bool
	ramping bool // some backend in rotation is in slow start
	checks  bool // ramping, or some backend in rotation has a capacity
}

// rng is the random source: the runtime's generator, or a seeded one under
// a mutex.
type rng struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (g *rng) uint64() uint64 {
	if g.r == nil {
		return rand.Uint64()
	}
	g.mu.Lock()
	v := g.r.Uint64()
	g.mu.Unlock()
	return v
}

// intn returns a number in [0, n) for n > 0 (Lemire's multiply-shift; the
// bias is below 2^-32 for any realistic n).
func (g *rng) intn(n int) int {
	return int((g.uint64() >> 32) * uint64(n) >> 32)
}

func (g *rng) float64() float64 { return float64(g.uint64()>>11) / (1 << 53) }

// core is the machinery every algorithm shares: the backend set, health,
// outlier detection, slow start, panic mode, stats and events. It is
// embedded in every algorithm's type.
type core struct {
	algo    algorithm
	set     settings
	epoch   time.Time
	rng     rng
	measure bool    // record the time of every pick (latency-aware algorithms)
	counted bool    // keep per-backend request, in-flight and latency figures
	silent  bool    // neither counters nor outlier detection: a success records nothing
	tau     float64 // the latency decay time, in decay steps
	shift   uint    // a decay step is 1<<shift nanoseconds of the clock

	coarse coarseClock

	snap atomic.Pointer[snapshot]

	mu        sync.Mutex
	eps       []*endpoint // guarded by mu
	byAddr    map[string]*endpoint
	panicking bool
}

// Algorithm traits given to core.init.
const (
	// readsLoad marks algorithms that pick by in-flight counts or latency:
	// they need the per-backend counters that Options.DisableStats turns
	// off.
	readsLoad = 1 << iota
	// readsClock marks algorithms that pick by time-decayed latency: the
	// balancer reads the clock on every pick.
	readsClock
)

func (c *core) init(backends []Backend, opts Options, algo algorithm, traits int) error {
	set, err := opts.settings()
	if err != nil {
		return err
	}
	if len(backends) == 0 {
		return configErr(ErrNoBackends, "a balancer needs at least one backend")
	}
	if opts.DisableStats && traits&readsLoad != 0 {
		return configErr(nil, "DisableStats is set, but this algorithm picks by load and needs the per-backend counters")
	}
	c.algo, c.set, c.measure = algo, set, traits&readsClock != 0
	c.counted = !opts.DisableStats
	c.silent = !c.counted && opts.Outlier == nil
	c.rng.r = opts.Rand
	c.shift = decayShift(set.Decay)
	c.tau = float64(set.Decay) / float64(int64(1)<<c.shift)
	c.epoch = c.wall()
	c.byAddr = make(map[string]*endpoint, len(backends))
	for i, b := range backends {
		nb, err := c.validate(b, i)
		if err != nil {
			return err
		}
		if _, dup := c.byAddr[nb.Addr]; dup {
			return configErr(ErrDuplicateBackend, "%q is listed twice", nb.Addr)
		}
		e := newEndpoint(nb)
		c.byAddr[nb.Addr] = e
		c.eps = append(c.eps, e)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err = c.rebuildLocked(0)
	return err
}

// validate checks b against what this balancer supports.
func (c *core) validate(b Backend, pos int) (Backend, error) {
	nb, err := b.validate(pos)
	if err == nil && !c.counted && nb.Capacity > 0 {
		err = configErr(nil, "backend %q has capacity %d, but DisableStats is set and capacities need in-flight counts", nb.Addr, nb.Capacity)
	}
	return nb, err
}

func newEndpoint(b Backend) *endpoint {
	e := &endpoint{b: b}
	e.weight.Store(math.Float64bits(b.Weight))
	return e
}

func (c *core) wall() time.Time {
	if c.set.Now != nil {
		return c.set.Now()
	}
	return time.Now()
}

// clock returns nanoseconds since the balancer was built (monotonic with
// the default clock, read through time.Since, which skips the wall clock).
func (c *core) clock() int64 {
	if c.set.Now != nil {
		return int64(c.set.Now().Sub(c.epoch))
	}
	return int64(time.Since(c.epoch))
}

func (c *core) at(now int64) time.Time { return c.epoch.Add(time.Duration(now)) }

// errZeroBalancer is returned by every method of a balancer that was not
// built by its constructor: its zero value has no backends and no
// algorithm, and a method that went on would panic, under the lock for
// some, which would leave every later call blocked.
var errZeroBalancer = configErr(nil, "balancer used without its constructor (NewRoundRobin, NewP2C, ...)")

// Pick chooses a backend for req. See [Balancer].
func (c *core) Pick(ctx context.Context, req Request) (Pick, error) {
	if err := ctx.Err(); err != nil {
		return Pick{}, err
	}
	s := c.snap.Load()
	if s == nil {
		return Pick{}, errZeroBalancer
	}
	var now int64
	precise := false
	if s.hasWake || c.measure {
		now, precise = c.pickClock()
		if s.hasWake && now >= s.wake {
			s = c.refresh(now)
		}
	}
	if len(s.active) == 0 {
		return Pick{}, ErrNoHealthyBackend
	}
	e := s.picker.pick(req, now)
	if e == nil || s.checks || len(req.Avoid) > 0 {
		var err error
		if e, err = c.recheck(s, req, e, now); err != nil {
			return Pick{}, err
		}
	}
	if c.counted {
		if n := e.requests.Add(1); precise && n%rateSample == 0 {
			c.sampleRate(e, now, len(s.active))
		}
	}
	return Pick{e: e, c: c, start: now, rough: !precise}, nil
}

func (c *core) usable(e *endpoint, req *Request) bool {
	return (e.b.Capacity == 0 || e.inflight() < int64(e.b.Capacity)) && !req.avoids(e.b.Addr)
}

// rampAccept keeps a slow-starting backend with probability equal to its
// current share of traffic.
func (c *core) rampAccept(e *endpoint, now int64) bool {
	if !e.rampOn.Load() {
		return true
	}
	ss := c.set.slow
	f := float64(now-e.rampStart.Load()) / float64(ss.Window)
	if f >= 1 {
		return true
	}
	f = max(math.Pow(max(f, 0), 1/ss.Aggression), ss.MinWeightPercent/100)
	return c.rng.float64() < f
}

// recheck enforces what the algorithms do not know about: requests' Avoid
// lists, capacities and slow start. It re-picks a few times, then scans.
func (c *core) recheck(s *snapshot, req Request, e *endpoint, now int64) (*endpoint, error) {
	const repicks = 3
	ramp := s.ramping && !c.algo.affinity()
	var rejected *endpoint // a slow-starting backend that lost its draw
	for try := 0; ; try++ {
		if e != nil && e != rejected && c.usable(e, &req) {
			if !ramp || c.rampAccept(e, now) {
				return e, nil
			}
			if rejected == nil {
				rejected = e
			}
		}
		if try == repicks {
			break
		}
		e = s.picker.pick(req, now)
	}
	n := len(s.active)
	off := c.rng.intn(n)
	avoided := 0
	for i := range n {
		e := s.active[(off+i)%n]
		if e != rejected && c.usable(e, &req) {
			return e, nil
		}
		if req.avoids(e.b.Addr) {
			avoided++
		}
	}
	switch {
	case rejected != nil:
		return rejected, nil // nothing else is usable
	case avoided == n && n == 1 && c.usable(s.active[0], &Request{}):
		return s.active[0], nil // the only backend may be retried
	case avoided == n:
		return nil, ErrNoHealthyBackend
	}
	return nil, ErrAtCapacity
}

func (c *core) done(p Pick, r Result) {
	e := p.e
	failed := r.Err != nil
	if failed {
		e.failures.Add(1)
	}
	if !c.counted {
		if c.set.Outlier != nil {
			c.outlierObserve(e, failed, -1)
		}
		return
	}
	e.completed.Add(1)
	lat := int64(r.Latency)
	now := int64(-1)
	if c.measure {
		// Latency-aware algorithms keep Finagle's time-decayed peak EWMA.
		// With the latency reported, the pick's time plus the latency is
		// now, and the clock need not be read again.
		switch {
		case lat > 0:
			now = p.start + lat
		case p.rough:
			// The pick read the coarse clock, which cannot time the
			// request: from now on picks read the real clock.
			if !c.coarse.selfTimed.Load() {
				c.coarse.selfTimed.Store(true)
			}
		default:
			now = c.clock()
			lat = now - p.start
		}
		if lat > 0 {
			e.observe(float64(lat), now>>c.shift, c.tau)
		}
	} else if lat > 0 {
		e.average(float64(lat))
	}
	if c.set.Outlier != nil {
		c.outlierObserve(e, failed, now)
	}
}

// refresh rebuilds the snapshot after an ejection or ramp ended.
func (c *core) refresh(now int64) *snapshot {
	c.mu.Lock()
	s := c.snap.Load()
	var evs []Event
	if s.hasWake && now >= s.wake {
		evs, _ = c.rebuildLocked(now) // on error the old snapshot stays
		s = c.snap.Load()
	}
	c.mu.Unlock()
	c.emit(evs)
	return s
}

func (c *core) emit(evs []Event) {
	if c.set.OnEvent == nil {
		return
	}
	for _, ev := range evs {
		c.set.OnEvent(ev)
	}
}

// rebuildLocked recomputes every backend's state and the rotation, builds
// the algorithm's picker and publishes the snapshot. It returns the events
// to emit once c.mu is released. Requires c.mu held.
func (c *core) rebuildLocked(now int64) ([]Event, error) {
	var evs []Event
	ns := &snapshot{}
	healthy, total := 0, 0
	var inRotation, all []*endpoint
	slow := c.set.SlowStart != nil
	for _, e := range c.eps {
		st, reason := StateHealthy, e.reason
		switch {
		case e.draining:
			st = StateDraining
		case e.unhealthy:
			st = StateUnhealthy
		case e.ejected && now < e.ejectedUntil:
			st = StateEjected
		default:
			if e.ejected {
				e.ejected = false
				reason = "ejection expired"
			}
			if slow && (e.state == StateUnhealthy || e.state == StateEjected) {
				e.rampStart.Store(now)
				e.rampOn.Store(true)
			}
			if e.rampOn.Load() {
				end := e.rampStart.Load() + int64(c.set.slow.Window)
				if now >= end {
					e.rampOn.Store(false)
					if reason == "" {
						reason = "slow start complete"
					}
				} else {
					st = StateSlowStart
				}
			}
		}
		if st == StateEjected {
			ns.setWake(e.ejectedUntil)
		}
		if st == StateSlowStart {
			ns.setWake(e.rampStart.Load() + int64(c.set.slow.Window))
		}
		if st != e.state {
			if reason == "" {
				reason = "state recomputed"
			}
			evs = append(evs, Event{Kind: EventStateChange, Addr: e.b.Addr, From: e.state, To: st, Reason: reason, At: c.at(now)})
			e.state = st
		}
		e.reason = ""
		if st == StateDraining {
			continue
		}
		total++
		all = append(all, e)
		if st == StateHealthy || st == StateSlowStart {
			healthy++
			inRotation = append(inRotation, e)
		}
	}
	panicking := !c.set.DisablePanic && total > 0 && float64(healthy) < c.set.PanicThreshold*float64(total)
	if panicking {
		inRotation = all
	}
	if panicking != c.panicking {
		kind := EventPanicExit
		if panicking {
			kind = EventPanicEnter
		}
		evs = append(evs, Event{Kind: kind, Reason: fmt.Sprintf("%d of %d backends healthy", healthy, total), At: c.at(now)})
		c.panicking = panicking
	}
	ns.active, ns.panic = inRotation, panicking
	for _, e := range inRotation {
		if e.rampOn.Load() {
			ns.ramping, ns.checks = true, true
		}
		if e.b.Capacity > 0 {
			ns.checks = true
		}
	}
	if len(inRotation) > 0 {
		p, err := c.algo.build(inRotation, c)
		if err != nil {
			return evs, err
		}
		ns.picker = p
	}
	c.snap.Store(ns)
	return evs, nil
}

func (s *snapshot) setWake(t int64) {
	if !s.hasWake || t < s.wake {
		s.wake, s.hasWake = t, true
	}
}

// change runs f on the endpoint of addr under the lock, rebuilds and emits
// the events.
func (c *core) change(addr string, f func(e *endpoint) error) error {
	if c.algo == nil {
		return errZeroBalancer
	}
	now := c.clock()
	c.mu.Lock()
	e, ok := c.byAddr[addr]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("%w %q", ErrUnknownBackend, addr)
	}
	if err := f(e); err != nil {
		c.mu.Unlock()
		return err
	}
	evs, err := c.rebuildLocked(now)
	c.mu.Unlock()
	c.emit(evs)
	return err
}

// Add adds a backend. See [Balancer].
func (c *core) Add(b Backend) error {
	if c.algo == nil {
		return errZeroBalancer
	}
	nb, err := c.validate(b, 0)
	if err != nil {
		return err
	}
	now := c.clock()
	c.mu.Lock()
	evs, err := c.addLocked(nb, now)
	if err == nil {
		var more []Event
		more, err = c.rebuildLocked(now)
		evs = append(evs, more...)
	}
	c.mu.Unlock()
	c.emit(evs)
	return err
}

func (c *core) addLocked(b Backend, now int64) ([]Event, error) {
	if _, dup := c.byAddr[b.Addr]; dup {
		return nil, configErr(ErrDuplicateBackend, "%q is already a backend", b.Addr)
	}
	e := newEndpoint(b)
	st := StateHealthy
	if c.set.SlowStart != nil {
		e.rampStart.Store(now)
		e.rampOn.Store(true)
		st = StateSlowStart
	}
	e.state = st
	c.byAddr[b.Addr] = e
	c.eps = append(c.eps, e)
	return []Event{{Kind: EventAdded, Addr: b.Addr, To: st, Reason: "added", At: c.at(now)}}, nil
}

// Remove removes a backend. See [Balancer].
func (c *core) Remove(addr string) error {
	if c.algo == nil {
		return errZeroBalancer
	}
	now := c.clock()
	c.mu.Lock()
	ev, err := c.removeLocked(addr, now)
	var evs []Event
	if err == nil {
		evs, err = c.rebuildLocked(now)
		evs = append([]Event{ev}, evs...)
	}
	c.mu.Unlock()
	c.emit(evs)
	return err
}

func (c *core) removeLocked(addr string, now int64) (Event, error) {
	e, ok := c.byAddr[addr]
	if !ok {
		return Event{}, fmt.Errorf("%w %q", ErrUnknownBackend, addr)
	}
	delete(c.byAddr, addr)
	c.eps = slices.DeleteFunc(c.eps, func(x *endpoint) bool { return x == e })
	return Event{Kind: EventRemoved, Addr: addr, From: e.state, Reason: "removed", At: c.at(now)}, nil
}

// Drain takes a backend out of rotation. See [Balancer].
func (c *core) Drain(addr string) error {
	return c.change(addr, func(e *endpoint) error {
		e.draining, e.reason = true, "drained"
		return nil
	})
}

// SetWeight changes a backend's weight. See [Balancer].
func (c *core) SetWeight(addr string, weight float64) error {
	if badFloat(weight) || weight <= 0 {
		return configErr(ErrInvalidWeight, "backend %q: weight %v (want a finite number > 0)", addr, weight)
	}
	return c.change(addr, func(e *endpoint) error {
		e.b.Weight = weight
		e.weight.Store(math.Float64bits(weight))
		return nil
	})
}

// SetHealthy records an active health check's verdict. See [Balancer].
func (c *core) SetHealthy(addr string, healthy bool) error {
	return c.change(addr, func(e *endpoint) error {
		if e.unhealthy == !healthy {
			return nil
		}
		e.unhealthy = !healthy
		e.reason = "health check passed"
		if !healthy {
			e.reason = "health check failed"
		}
		return nil
	})
}

// Update replaces the backend set. See [Balancer].
func (c *core) Update(backends []Backend) error {
	if c.algo == nil {
		return errZeroBalancer
	}
	if len(backends) == 0 {
		return configErr(ErrNoBackends, "an update needs at least one backend")
	}
	want := make(map[string]Backend, len(backends))
	order := make([]Backend, 0, len(backends))
	for i, b := range backends {
		nb, err := c.validate(b, i)
		if err != nil {
			return err
		}
		if _, dup := want[nb.Addr]; dup {
			return configErr(ErrDuplicateBackend, "%q is listed twice", nb.Addr)
		}
		want[nb.Addr] = nb
		order = append(order, nb)
	}
	now := c.clock()
	c.mu.Lock()
	var evs []Event
	for _, e := range slices.Clone(c.eps) {
		nb, keep := want[e.b.Addr]
		if keep && sameIdentity(e.b, nb) {
			if nb.Weight != e.b.Weight {
				e.b.Weight = nb.Weight
				e.weight.Store(math.Float64bits(nb.Weight))
			}
			delete(want, e.b.Addr)
			continue
		}
		ev, _ := c.removeLocked(e.b.Addr, now) // present: it came from c.eps
		evs = append(evs, ev)
	}
	for _, nb := range order {
		if _, add := want[nb.Addr]; add {
			more, _ := c.addLocked(nb, now) // not a duplicate: removed or new
			evs = append(evs, more...)
		}
	}
	more, err := c.rebuildLocked(now)
	c.mu.Unlock()
	c.emit(append(evs, more...))
	return err
}

// sameIdentity reports whether an update leaves a backend's immutable
// fields alone (weights may change in place; anything else replaces it).
func sameIdentity(a, b Backend) bool {
	return a.Zone == b.Zone && a.Capacity == b.Capacity &&
		(a.Coord == nil) == (b.Coord == nil) && (a.Coord == nil || *a.Coord == *b.Coord)
}

// Backends returns the configured backends. See [Balancer].
func (c *core) Backends() []Backend {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Backend, len(c.eps))
	for i, e := range c.eps {
		out[i] = e.b
	}
	return out
}

// Stats returns a snapshot of the counters. See [Balancer].
func (c *core) Stats() Stats {
	now := c.clock()
	s := c.snap.Load()
	if s == nil {
		return Stats{} // the zero balancer
	}
	if s.hasWake && now >= s.wake {
		s = c.refresh(now)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Stats{Backends: make([]BackendStats, len(c.eps)), InRotation: len(s.active), Panic: s.panic}
	for i, e := range c.eps {
		out.Backends[i] = BackendStats{
			Addr: e.b.Addr, Zone: e.b.Zone, Weight: e.b.Weight, State: e.state,
			InFlight: e.inflight(), Requests: e.requests.Load(), Failures: e.failures.Load(),
			Latency: time.Duration(math.Float64frombits(e.ewma.Load())), Ejections: e.ejectTotal,
		}
	}
	return out
}

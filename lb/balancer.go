package lb

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Balancer spreads requests over a set of backends with one [Algorithm].
// A request asks for a backend with [Balancer.Pick] and reports how it went
// with [Pick.Done], so load-aware algorithms, statistics and outlier
// detection learn from every request. The backend set changes while
// traffic flows: by hand ([Balancer.Add], [Balancer.Remove],
// [Balancer.Drain], [Balancer.SetWeight], [Balancer.Update]), from active
// health checks ([HealthChecker]) and from a discovery [Source] ([Follow]).
//
// Every algorithm shares the machinery of this type: the backend set,
// health, passive outlier detection, panic mode, slow start, capacities,
// statistics and events. A Balancer is safe for concurrent use: Pick and
// Done run lock-free or under the algorithm's short lock (named in each
// algorithm's doc); changes take the balancer's lock. It starts no
// goroutine.
//
// Build one with [New]. The zero value has no backends and no algorithm:
// its methods return an error wrapping [ErrInvalidConfig] at once, and
// Stats and Backends return nothing.
type Balancer struct {
	set     settings
	build   func(active []*endpoint, b *Balancer) (picker, error)
	ramp    bool // slow start re-picks (the algorithm has no key affinity)
	epoch   time.Time
	coarse  *CoarseClock // Options.Clock
	base    int64        // the coarse clock's value at epoch
	rng     rng
	measure bool    // keep the peak EWMA: picks read the clock
	counted bool    // keep per-backend request, in-flight and latency figures
	silent  bool    // neither counters nor outlier detection: a success records nothing
	tau     float64 // the latency decay time, in decay steps
	shift   uint    // a decay step is 1<<shift nanoseconds of the clock

	snap atomic.Pointer[snapshot]

	mu        sync.Mutex
	eps       []*endpoint // guarded by mu
	byAddr    map[string]*endpoint
	panicking bool
}

// New returns a balancer that picks among backends with alg.
func New(alg Algorithm, backends []Backend, opts Options) (*Balancer, error) {
	if alg == nil {
		return nil, configErr(nil, "a balancer needs an algorithm (RoundRobin{}, P2C{}, ...), got nil")
	}
	as, err := alg.setup()
	if err != nil {
		return nil, err
	}
	set, err := opts.settings()
	if err != nil {
		return nil, err
	}
	if len(backends) == 0 {
		return nil, configErr(ErrNoBackends, "a balancer needs at least one backend")
	}
	if opts.DisableStats && (as.readsLoad || as.decay > 0) {
		return nil, configErr(nil, "DisableStats is set, but %T picks by load and needs the per-backend counters", alg)
	}
	b := &Balancer{set: set, build: as.build, ramp: !as.affinity, coarse: opts.Clock}
	b.measure = as.decay > 0
	b.counted = !opts.DisableStats
	b.silent = !b.counted && opts.Outlier == nil
	b.rng.r = opts.Rand
	if b.measure {
		b.shift = decayShift(as.decay)
		b.tau = float64(as.decay) / float64(int64(1)<<b.shift)
	}
	switch {
	case b.coarse != nil:
		b.base = b.coarse.now.Load()
		b.epoch = b.coarse.base.Add(time.Duration(b.base))
	case set.Now != nil:
		b.epoch = set.Now()
	default:
		b.epoch = time.Now()
	}
	b.byAddr = make(map[string]*endpoint, len(backends))
	for i, be := range backends {
		nb, err := b.validate(be, i)
		if err != nil {
			return nil, err
		}
		if _, dup := b.byAddr[nb.Addr]; dup {
			return nil, configErr(ErrDuplicateBackend, "%q is listed twice", nb.Addr)
		}
		e := newEndpoint(nb)
		b.byAddr[nb.Addr] = e
		b.eps = append(b.eps, e)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.rebuildLocked(0); err != nil {
		return nil, err
	}
	return b, nil
}

// validate checks be against what this balancer supports.
func (b *Balancer) validate(be Backend, pos int) (Backend, error) {
	nb, err := be.validate(pos)
	if err == nil && !b.counted && nb.Capacity > 0 {
		err = configErr(nil, "backend %q has capacity %d, but DisableStats is set and capacities need in-flight counts", nb.Addr, nb.Capacity)
	}
	return nb, err
}

// clock returns nanoseconds since the balancer was built: from
// Options.Clock, from Options.Now, or from the monotonic clock (read
// through time.Since, which skips the wall clock).
func (b *Balancer) clock() int64 {
	switch {
	case b.coarse != nil:
		return b.coarse.now.Load() - b.base
	case b.set.Now != nil:
		return int64(b.set.Now().Sub(b.epoch))
	}
	return int64(time.Since(b.epoch))
}

func (b *Balancer) at(now int64) time.Time { return b.epoch.Add(time.Duration(now)) }

// errZeroBalancer is returned by every method of a Balancer that was not
// built by New: its zero value has no backends and no algorithm, and a
// method that went on would panic, under the lock for some, which would
// leave every later call blocked.
var errZeroBalancer = configErr(nil, "balancer used without its constructor, New")

// Pick chooses a backend for req among those in rotation. It returns
// [ErrNoHealthyBackend] when none is, [ErrAtCapacity] when all are at
// capacity, or ctx's error. The caller must call [Pick.Done] once.
//
// When nothing needs checking (no ejection or slow start pending, no
// capacities, no Avoid list) a [RoundRobin] pick is the rotation's one
// atomic add, plus the request counter unless [Options.DisableStats] is
// set.
func (b *Balancer) Pick(ctx context.Context, req Request) (Pick, error) {
	s := b.snap.Load()
	if s == nil {
		return Pick{}, errZeroBalancer
	}
	// Round robin's fast path: nothing to check, no time to read.
	if p, ok := s.picker.(*rrPicker); ok && !s.hasWake && !s.checks && len(req.Avoid) == 0 && ctx.Err() == nil {
		e := p.pick(req, 0)
		if b.counted {
			e.requests.Add(1)
		}
		return Pick{e: e, b: b}, nil
	}
	return b.pick(ctx, req, s)
}

// pick is Pick's general path: it reads the clock if needed, refreshes an
// outdated rotation and enforces what the algorithm does not know about.
// It is a function of its own so that round robin's fast path keeps a
// small frame.
func (b *Balancer) pick(ctx context.Context, req Request, s *snapshot) (Pick, error) {
	if err := ctx.Err(); err != nil {
		return Pick{}, err
	}
	var now int64
	if s.hasWake || b.measure {
		now = b.clock()
		if s.hasWake && now >= s.wake {
			s = b.refresh(now)
		}
	}
	if len(s.active) == 0 {
		return Pick{}, ErrNoHealthyBackend
	}
	e := s.picker.pick(req, now)
	// recheck returns a usable pick as it is, so these tests only save its
	// cost. Today a picker returns nil only when backends are at capacity,
	// which s.checks covers; e == nil guards a picker that would not.
	if e == nil || s.checks || len(req.Avoid) != 0 {
		var err error
		if e, err = b.recheck(s, req, e, now); err != nil {
			return Pick{}, err
		}
	}
	if b.counted {
		e.requests.Add(1)
	}
	return Pick{e: e, b: b, start: now}, nil
}

func (b *Balancer) usable(e *endpoint, req *Request) bool {
	return (e.b.Capacity == 0 || e.inflight() < int64(e.b.Capacity)) && !req.avoids(e.b.Addr)
}

// rampAccept keeps a slow-starting backend with probability equal to its
// current share of traffic.
func (b *Balancer) rampAccept(e *endpoint, now int64) bool {
	if !e.rampOn.Load() {
		return true
	}
	ss := b.set.slow
	f := float64(now-e.rampStart.Load()) / float64(ss.Window)
	if f >= 1 { // at exactly 1 the draw below accepts too: it is < 1
		return true
	}
	f = max(math.Pow(max(f, 0), 1/ss.Aggression), ss.MinWeightPercent/100)
	return b.rng.float64() < f // <= would differ only on a draw exactly f
}

// recheck enforces what the algorithms do not know about: requests' Avoid
// lists, capacities and slow start. It re-picks a few times, then scans.
func (b *Balancer) recheck(s *snapshot, req Request, e *endpoint, now int64) (*endpoint, error) {
	const repicks = 3
	ramp := s.ramping && b.ramp
	var rejected *endpoint // a slow-starting backend that lost its draw
	for try := 0; ; try++ {
		if e != nil && e != rejected && b.usable(e, &req) {
			if !ramp || b.rampAccept(e, now) {
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
	off := b.rng.intn(n)
	avoided := 0
	for i := range n {
		e := s.active[(off+i)%n]
		if e != rejected && b.usable(e, &req) {
			return e, nil
		}
		if req.avoids(e.b.Addr) {
			avoided++
		}
	}
	switch {
	case rejected != nil:
		return rejected, nil // nothing else is usable
	case avoided == n && n == 1 && b.usable(s.active[0], &Request{}):
		return s.active[0], nil // the only backend may be retried
	case avoided == n:
		return nil, ErrNoHealthyBackend
	}
	return nil, ErrAtCapacity
}

// done records the result of the request picked as p, and marks p done.
func (b *Balancer) done(p *Pick, r Result) {
	e, start := p.e, p.start
	p.b = nil
	failed := r.Err != nil
	if failed {
		e.failures.Add(1)
	}
	if !b.counted {
		if b.set.Outlier != nil {
			b.outlierObserve(e, failed, -1)
		}
		return
	}
	e.completed.Add(1)
	lat := int64(r.Latency)
	now := int64(-1)
	if b.measure {
		// Latency-aware algorithms keep Finagle's time-decayed peak EWMA.
		// With the latency reported, the pick's time plus the latency is
		// now, and the clock need not be read again.
		if lat > 0 {
			now = start + lat
		} else {
			now = b.clock()
			lat = now - start
		}
		if lat > 0 {
			e.observe(float64(lat), now>>b.shift, b.tau)
		}
	} else if lat > 0 {
		e.average(float64(lat))
	}
	if b.set.Outlier != nil {
		b.outlierObserve(e, failed, now)
	}
}

package resilience

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ShedAlgorithm is how a [LoadShedder] adapts its limit.
type ShedAlgorithm int

const (
	// ShedAIMD (the default) adds one on each fast completion while busy
	// and multiplies by Backoff on a slow one (Netflix's AIMDLimit): simple,
	// needs a latency target.
	ShedAIMD ShedAlgorithm = iota
	// ShedGradient compares each latency with a long-run average (Netflix's
	// Gradient2Limit): limit ← 0.8·limit + 0.2·(limit·gradient + √limit),
	// gradient = clamp(1.5·long/sample, 0.5, 1). It needs no target — it
	// shrinks when latency rises above its own history — but it drifts if
	// latency rises slowly.
	ShedGradient
)

// ShedderOptions configure a [LoadShedder]. The zero value starts at 20
// concurrent requests, adapts between 1 and 1000 by AIMD, and treats
// requests slower than 100 ms as a sign of overload.
type ShedderOptions struct {
	// Name identifies the shedder in errors. Default "".
	Name string
	// Algorithm adapts the limit. Default [ShedAIMD].
	Algorithm ShedAlgorithm
	// InitialLimit is the starting concurrency limit. Default 20.
	InitialLimit int
	// MinLimit and MaxLimit bound the limit. Defaults 1 and 1000.
	MinLimit, MaxLimit int
	// LatencyTarget: under AIMD, a request slower than this (or that failed
	// by overload) is a drop, which cuts the limit. Default 100 ms. The
	// gradient algorithm ignores it.
	LatencyTarget time.Duration
	// Backoff is the multiplicative decrease on a drop, in (0, 1). Default
	// 0.9.
	Backoff float64
	// RetryAfter is the Retry-After the HTTP middleware sends with a 503.
	// Default 1 s; it is rounded up to whole seconds.
	RetryAfter time.Duration
	// OnLimitChange is called after the limit changes, never under a lock.
	// Default nil.
	OnLimitChange func(old, new int)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// LoadShedder is server-side load shedding by an adaptive concurrency
// limit, after Netflix's concurrency-limits (AIMD by default, see
// [ShedGradient] for the gradient algorithm). With AIMD the server admits
// at most limit requests at once; each request that completes within the
// latency target while the server is at least half busy raises the limit
// by one (additive increase), and a request that is slower or dropped
// multiplies it by Backoff (multiplicative decrease) — once per round trip,
// so the requests already in flight when the limit was cut do not cut it
// again. Past saturation, the excess is
// refused at once with a cheap 503 instead of queueing until every request
// times out, so goodput stays near capacity.
//
// Pros: needs no capacity number — it finds the concurrency at which
// latency stays on target, and follows it as the backend speeds up or
// slows down. Cons: a latency target that is too low sheds healthy load;
// a burst of slow-but-cheap requests cuts the limit.
//
// A LoadShedder is safe for concurrent use. It is a [Guard], and
// [LoadShedder.Middleware] puts it in front of an http.Handler.
type LoadShedder struct {
	name          string
	algo          ShedAlgorithm
	min, max      float64
	target        time.Duration
	backoff       float64
	retryAfter    string
	onLimitChange func(old, new int)
	now           func() time.Time

	mu       sync.Mutex
	limit    float64   // guarded by mu
	inFlight int       // guarded by mu
	lastCut  time.Time // guarded by mu: when the limit was last cut
	longRTT  float64   // guarded by mu: gradient's long-run latency (ns)
	// tickets are the permits Enter hands out: per ticket, its generation,
	// odd while the request it admitted is in flight. Exit releases a
	// request only while its permit's generation is current, so a permit
	// is released once however often Exit is called with it.
	tickets     []uint64 // guarded by mu
	freeTickets []uint32 // guarded by mu

	admitted, shed, drops counter
}

// ShedderStats is a snapshot of a shedder.
type ShedderStats struct {
	Limit, InFlight       int
	Admitted, Shed, Drops uint64
}

// NewLoadShedder returns a shedder configured by opts.
func NewLoadShedder(opts ShedderOptions) (*LoadShedder, error) {
	if opts.InitialLimit == 0 {
		opts.InitialLimit = 20
	}
	if opts.MinLimit == 0 {
		opts.MinLimit = 1
	}
	if opts.MaxLimit == 0 {
		opts.MaxLimit = max(1000, opts.InitialLimit)
	}
	if opts.LatencyTarget == 0 {
		opts.LatencyTarget = 100 * time.Millisecond
	}
	if opts.Backoff == 0 {
		opts.Backoff = 0.9
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = time.Second
	}
	switch {
	case opts.MinLimit < 1:
		return nil, configError("shedder MinLimit must be >= 1, got %d", opts.MinLimit)
	case opts.MaxLimit < opts.MinLimit:
		return nil, configError("shedder MaxLimit %d is below MinLimit %d", opts.MaxLimit, opts.MinLimit)
	case opts.InitialLimit < opts.MinLimit || opts.InitialLimit > opts.MaxLimit:
		return nil, configError("shedder InitialLimit %d is outside [%d, %d]", opts.InitialLimit, opts.MinLimit, opts.MaxLimit)
	case opts.LatencyTarget < 0:
		return nil, configError("shedder LatencyTarget must be positive, got %v", opts.LatencyTarget)
	case !(opts.Backoff > 0 && opts.Backoff < 1):
		return nil, configError("shedder Backoff must be in (0, 1), got %v", opts.Backoff)
	case opts.Algorithm != ShedAIMD && opts.Algorithm != ShedGradient:
		return nil, configError("shedder Algorithm %d is not AIMD or gradient", int(opts.Algorithm))
	case opts.RetryAfter < 0:
		return nil, configError("shedder RetryAfter must not be negative, got %v", opts.RetryAfter)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	secs := int64(math.Ceil(opts.RetryAfter.Seconds()))
	return &LoadShedder{
		name: opts.Name, algo: opts.Algorithm, min: float64(opts.MinLimit), max: float64(opts.MaxLimit), target: opts.LatencyTarget,
		backoff: opts.Backoff, retryAfter: strconv.FormatInt(secs, 10), onLimitChange: opts.OnLimitChange,
		now: opts.Now, limit: float64(opts.InitialLimit),
	}, nil
}

// shedTicket is the request a [LoadShedder] admitted through Enter,
// carried by its [Permit].
type shedTicket struct {
	l   *LoadShedder
	i   uint32
	gen uint64 // the ticket's generation when it was handed out: odd
}

// TryAcquire admits one request if fewer than the limit are in flight.
// Each TryAcquire that returns true must be followed by exactly one
// [LoadShedder.Release].
func (l *LoadShedder) TryAcquire() bool {
	_, ok := l.admit(false)
	return ok
}

// admit admits one request if fewer than the limit are in flight, with a
// ticket for it if asked.
func (l *LoadShedder) admit(ticket bool) (shedTicket, bool) {
	var t shedTicket
	l.mu.Lock()
	ok := l.inFlight < int(l.limit)
	if ok {
		l.inFlight++
		if ticket {
			if n := len(l.freeTickets); n > 0 {
				t.i = l.freeTickets[n-1]
				l.freeTickets = l.freeTickets[:n-1]
			} else {
				t.i = uint32(len(l.tickets))
				l.tickets = append(l.tickets, 0)
			}
			l.tickets[t.i]++
			t.l, t.gen = l, l.tickets[t.i]
		}
	}
	l.mu.Unlock()
	if ok {
		l.admitted.add()
	} else {
		l.shed.add()
	}
	return t, ok
}

// Release ends a request admitted by TryAcquire that took latency; dropped
// marks one that failed because of overload (a timeout), which counts
// like a slow one. A Release with no request in flight does nothing: it
// has no request to end, and must not let one more in than the limit.
func (l *LoadShedder) Release(latency time.Duration, dropped bool) {
	l.release(latency, dropped, nil)
}

// release ends a request, the one ticket t admitted if t is not nil: if
// that ticket was already released, it does nothing.
func (l *LoadShedder) release(latency time.Duration, dropped bool, t *shedTicket) {
	if l.now == nil {
		return // the zero shedder, which admits nothing
	}
	now := l.now()
	l.mu.Lock()
	if t != nil {
		// (t.i is always a ticket of l's: the bound check is a guard.)
		if int(t.i) >= len(l.tickets) || l.tickets[t.i] != t.gen {
			l.mu.Unlock()
			return // released already
		}
		l.tickets[t.i]++
		l.freeTickets = append(l.freeTickets, t.i)
	}
	if l.inFlight == 0 {
		l.mu.Unlock()
		return
	}
	l.inFlight--
	old := int(l.limit)
	if l.algo == ShedGradient {
		l.gradient(latency, dropped)
	} else if dropped || latency > l.target {
		// One cut per round trip, as TCP cuts once per window: requests
		// that were already in flight at the last cut report the same
		// congestion and must not cut again.
		if l.lastCut.IsZero() || now.Add(-latency).After(l.lastCut) {
			l.limit = max(l.min, l.limit*l.backoff)
			l.lastCut = now
		}
	} else if float64(l.inFlight+1)*2 >= l.limit {
		l.limit = min(l.max, l.limit+1)
	}
	cur := int(l.limit)
	l.mu.Unlock()
	if dropped || (l.algo == ShedAIMD && latency > l.target) {
		l.drops.add()
	}
	if cur != old && l.onLimitChange != nil {
		l.onLimitChange(old, cur)
	}
}

// gradient applies one latency sample to the limit by the gradient
// algorithm. Requires l.mu.
func (l *LoadShedder) gradient(latency time.Duration, dropped bool) {
	rtt := float64(max(latency, time.Microsecond))
	if l.longRTT == 0 {
		l.longRTT = rtt
	}
	if dropped {
		rtt = max(rtt, 2*l.longRTT)
	}
	l.longRTT += (rtt - l.longRTT) / 600
	if l.longRTT > 2*rtt { // recover quickly after a latency spike
		l.longRTT *= 0.95
	}
	if float64(l.inFlight+1)*2 < l.limit {
		return // the server is not busy: latency says nothing about the limit
	}
	g := max(0.5, min(1, 1.5*l.longRTT/rtt))
	next := l.limit*g + math.Sqrt(l.limit)
	l.limit = max(l.min, min(l.max, 0.8*l.limit+0.2*next))
}

// Enter admits the request or returns a [*PolicyError] wrapping [ErrShed].
func (l *LoadShedder) Enter(ctx context.Context) (Permit, error) {
	if l == nil || l.now == nil {
		return Permit{}, notMade("load shedder", "NewLoadShedder")
	}
	t, ok := l.admit(true)
	if !ok {
		return Permit{}, rejected("shed", l.name, ErrShed, nil)
	}
	return Permit{Start: l.now(), Ctx: ctx, shed: t}, nil
}

// Exit releases the request the permit holds, with its latency; an error
// ending in a deadline counts as a drop. It releases a request only once,
// however often it is called with the permit (or a copy), and does nothing
// for a permit that holds none of this shedder's requests (the zero
// Permit, or one another guard issued).
func (l *LoadShedder) Exit(p Permit, err error) {
	if p.shed.l != l || l == nil {
		return
	}
	dropped := err != nil && p.Ctx != nil && p.Ctx.Err() == context.DeadlineExceeded
	l.release(l.now().Sub(p.Start), dropped, &p.shed)
}

// Middleware sheds requests to next past the limit, answering 503 Service
// Unavailable with a Retry-After header.
func (l *LoadShedder) Middleware(next http.Handler) http.Handler {
	if l == nil || l.now == nil {
		err := notMade("load shedder", "NewLoadShedder")
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.TryAcquire() {
			w.Header().Set("Retry-After", l.retryAfter)
			http.Error(w, "overloaded, retry later", http.StatusServiceUnavailable)
			return
		}
		start := l.now()
		defer func() { l.Release(l.now().Sub(start), false) }()
		next.ServeHTTP(w, r)
	})
}

// Stats returns a snapshot of the shedder.
func (l *LoadShedder) Stats() ShedderStats {
	l.mu.Lock()
	s := ShedderStats{Limit: int(l.limit), InFlight: l.inFlight}
	l.mu.Unlock()
	s.Admitted, s.Shed, s.Drops = l.admitted.load(), l.shed.load(), l.drops.load()
	return s
}

package lb

import (
	"maps"
	"math"
	"time"
)

// Backend is one server a balancer can send requests to.
type Backend struct {
	// Addr identifies the backend, usually "host:port" or a URL. It must be
	// unique within a balancer and not empty.
	Addr string
	// Weight is the backend's capacity relative to the others, used by the
	// weighted algorithms ([SmoothWeighted], [EDF], [WeightedRandom],
	// [WeightedLeastConn], [P2C], [PeakEWMA], [RingHash], [Maglev]). It
	// must be a finite number > 0 (give 1 to every backend for equal
	// shares): zero, negative, NaN and infinite weights are errors wrapping
	// [ErrInvalidWeight], because a weight of 0 written to mean "no traffic"
	// must not silently become a share of traffic. Use [Balancer.Drain] to
	// take a backend out of rotation.
	Weight float64
	// Zone is the backend's zone or region, used by [Geo]. Optional.
	Zone string
	// Coord is the backend's location, used by [Geo] when requests carry
	// coordinates. Optional; NaN or out-of-range values are errors.
	Coord *Coord
	// Capacity is the most requests the backend should have in flight; a
	// backend at capacity is passed over by every algorithm, and [Geo]
	// spills over to the next zone when a zone's backends are all at
	// capacity. Zero means unlimited; negative is an error.
	Capacity int
	// Meta is free-form metadata; the balancer copies it and never reads
	// it.
	Meta map[string]string
}

// Coord is a point on the Earth in degrees.
type Coord struct {
	Lat, Lon float64
}

func (c *Coord) valid() bool {
	return c == nil || (!math.IsNaN(c.Lat) && !math.IsNaN(c.Lon) &&
		c.Lat >= -90 && c.Lat <= 90 && c.Lon >= -180 && c.Lon <= 180)
}

// distanceKm is the great-circle (haversine) distance between a and b.
func distanceKm(a, b Coord) float64 {
	const earthRadiusKm = 6371.0
	const rad = math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLon := (b.Lon - a.Lon) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(h, 1)))
}

// validate checks b and returns its normalised copy (Meta and Coord copied
// so the caller can reuse them).
func (b Backend) validate(pos int) (Backend, error) {
	if b.Addr == "" {
		return b, configErr(nil, "backend %d has an empty address", pos)
	}
	if math.IsNaN(b.Weight) || math.IsInf(b.Weight, 0) || b.Weight <= 0 {
		return b, configErr(ErrInvalidWeight, "backend %q has weight %v (want a finite number > 0)", b.Addr, b.Weight)
	}
	if !b.Coord.valid() {
		return b, configErr(ErrInvalidCoord, "backend %q has coordinates (%v, %v) (want latitude in [-90, 90], longitude in [-180, 180])", b.Addr, b.Coord.Lat, b.Coord.Lon)
	}
	if b.Coord != nil {
		c := *b.Coord
		b.Coord = &c
	}
	if b.Capacity < 0 {
		return b, configErr(nil, "backend %q has capacity %d (want ≥ 0; 0 means unlimited)", b.Addr, b.Capacity)
	}
	b.Meta = maps.Clone(b.Meta)
	return b, nil
}

// Request describes the request being balanced. The zero value is a
// request with no key, no origin and nothing to avoid.
type Request struct {
	// Key is the affinity key of hash-based algorithms ([IPHash],
	// [RingHash], [Maglev]): a client IP, a session or user id. Requests
	// without a key are spread at random by those algorithms.
	Key string
	// Zone is the zone the request comes from, used by [Geo] with
	// [Geo.ZoneLatency].
	Zone string
	// Coord is where the request comes from, used by [Geo] with the
	// backends' coordinates.
	Coord *Coord
	// Avoid lists backend addresses not to pick (those a request already
	// tried). [Failover] fills it.
	Avoid []string
}

func (r *Request) avoids(addr string) bool {
	for _, a := range r.Avoid {
		if a == addr {
			return true
		}
	}
	return false
}

// Result is the outcome of one request, reported through [Pick.Done] so
// that load-aware algorithms and outlier detection learn from it.
type Result struct {
	// Err is the request's error; non-nil counts as a failure for stats and
	// outlier detection. Report only errors that say something about the
	// backend (a refused connection, a timeout, a 5xx), not a client's
	// cancellation.
	Err error
	// Latency is the request's duration. Report it when you measure it
	// anyway (the [Proxy] and [Failover] do): [PeakEWMA] then needs no clock
	// read of its own in Done. Zero means "not measured": PeakEWMA then
	// times the request from Pick to Done itself, on the balancer's clock
	// (to the tick with an [Options.Clock]); the other algorithms leave
	// their latency average unchanged.
	Latency time.Duration
}

// Pick is a backend chosen for one request. Call [Pick.Done] once when
// the request finishes. A Pick is a small value and picking allocates
// nothing. The zero Pick's Done does nothing.
type Pick struct {
	e     *endpoint
	b     *Balancer // nil once Done
	start int64     // nanoseconds on b's clock, 0 if not read
}

// Addr returns the picked backend's address, or "" for the zero Pick.
func (p *Pick) Addr() string {
	if p.e == nil {
		return ""
	}
	return p.e.b.Addr
}

// Backend returns the picked backend as it was configured (its weight as
// of the last change), or the zero Backend for the zero Pick.
func (p *Pick) Backend() Backend {
	if p.e == nil {
		return Backend{}
	}
	b := p.e.b
	b.Weight = p.e.weightNow()
	return b
}

// Done reports the request's result: it releases the in-flight slot, counts
// a failure, updates the latency average and feeds outlier detection. Call
// it once per Pick, also when the request fails. A second call on the same
// Pick does nothing; a copy of p made before the first call would still
// count the request twice.
func (p *Pick) Done(r Result) {
	if p.b == nil || (r.Err == nil && p.b.silent) {
		return // the zero Pick, a second call, or a success with nothing to record
	}
	p.b.done(p, r)
}

// State is a backend's place in rotation.
type State uint8

// Backend states, from a balancer's point of view.
const (
	// StateHealthy backends are in rotation.
	StateHealthy State = iota
	// StateSlowStart backends are in rotation with a reduced share of
	// traffic that grows over [SlowStartOptions.Window].
	StateSlowStart
	// StateUnhealthy backends failed active health checks and are out of
	// rotation.
	StateUnhealthy
	// StateEjected backends were ejected by outlier detection and are out
	// of rotation until their ejection time passes.
	StateEjected
	// StateDraining backends take no new requests; requests in flight
	// finish normally.
	StateDraining
)

var stateNames = [...]string{"healthy", "slow-start", "unhealthy", "ejected", "draining"}

// String returns the state's name, such as "healthy" or "ejected".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// EventKind says what an [Event] reports.
type EventKind uint8

// Kinds of event.
const (
	// EventStateChange: a backend moved between states (From → To).
	EventStateChange EventKind = iota
	// EventAdded: a backend joined the balancer (To is its state).
	EventAdded
	// EventRemoved: a backend left the balancer (From was its state).
	EventRemoved
	// EventPanicEnter: too few backends are healthy, so the balancer
	// spreads traffic over all of them (see [Options.PanicThreshold]).
	EventPanicEnter
	// EventPanicExit: enough backends are healthy again.
	EventPanicExit
)

var eventNames = [...]string{"state-change", "added", "removed", "panic-enter", "panic-exit"}

// String returns the kind's name, such as "state-change".
func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Event reports a change a user may want to log or count. Events are
// delivered after the balancer's lock is released, on the goroutine that
// caused the change (a Pick, a Done, a health probe, an admin call).
type Event struct {
	Kind EventKind
	// Addr is the backend concerned; empty for panic events.
	Addr string
	// From and To are the backend's states before and after.
	From, To State
	// Reason says why, e.g. "5 consecutive failures", "health check
	// failed", "ejection expired".
	Reason string
	// At is when it happened, on the balancer's clock.
	At time.Time
}

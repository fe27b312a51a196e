package lb

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// change runs f on the endpoint of addr under the lock, rebuilds and emits
// the events.
func (b *Balancer) change(addr string, f func(e *endpoint) error) error {
	if b.build == nil {
		return errZeroBalancer
	}
	now := b.clock()
	b.mu.Lock()
	e, ok := b.byAddr[addr]
	if !ok {
		b.mu.Unlock()
		return fmt.Errorf("%w %q", ErrUnknownBackend, addr)
	}
	if err := f(e); err != nil {
		b.mu.Unlock()
		return err
	}
	evs, err := b.rebuildLocked(now)
	b.mu.Unlock()
	b.emit(evs)
	return err
}

// Add adds a backend; it enters rotation at once (through slow start if
// configured).
func (b *Balancer) Add(be Backend) error {
	if b.build == nil {
		return errZeroBalancer
	}
	nb, err := b.validate(be, 0)
	if err != nil {
		return err
	}
	now := b.clock()
	b.mu.Lock()
	evs, err := b.addLocked(nb, now)
	if err == nil {
		var more []Event
		more, err = b.rebuildLocked(now)
		evs = append(evs, more...)
	}
	b.mu.Unlock()
	b.emit(evs)
	return err
}

func (b *Balancer) addLocked(nb Backend, now int64) ([]Event, error) {
	if _, dup := b.byAddr[nb.Addr]; dup {
		return nil, configErr(ErrDuplicateBackend, "%q is already a backend", nb.Addr)
	}
	e := newEndpoint(nb)
	st := StateHealthy
	if b.set.SlowStart != nil {
		e.rampStart.Store(now)
		e.rampOn.Store(true)
		st = StateSlowStart
	}
	e.state = st
	b.byAddr[nb.Addr] = e
	b.eps = append(b.eps, e)
	return []Event{{Kind: EventAdded, Addr: nb.Addr, To: st, Reason: "added", At: b.at(now)}}, nil
}

// Remove removes a backend at once; requests in flight to it may still
// report their results. [Balancer.Drain] first lets them finish.
func (b *Balancer) Remove(addr string) error {
	if b.build == nil {
		return errZeroBalancer
	}
	now := b.clock()
	b.mu.Lock()
	ev, err := b.removeLocked(addr, now)
	var evs []Event
	if err == nil {
		evs, err = b.rebuildLocked(now)
		evs = append([]Event{ev}, evs...)
	}
	b.mu.Unlock()
	b.emit(evs)
	return err
}

func (b *Balancer) removeLocked(addr string, now int64) (Event, error) {
	e, ok := b.byAddr[addr]
	if !ok {
		return Event{}, fmt.Errorf("%w %q", ErrUnknownBackend, addr)
	}
	delete(b.byAddr, addr)
	b.eps = slices.DeleteFunc(b.eps, func(x *endpoint) bool { return x == e })
	return Event{Kind: EventRemoved, Addr: addr, From: e.state, Reason: "removed", At: b.at(now)}, nil
}

// Drain takes a backend out of rotation for new requests while those in
// flight finish; watch its InFlight in [Balancer.Stats], then Remove it.
// [Follow] does both for the backends its source stops reporting.
func (b *Balancer) Drain(addr string) error {
	return b.change(addr, func(e *endpoint) error {
		e.draining, e.reason = true, "drained"
		return nil
	})
}

// SetWeight changes a backend's weight (a finite number > 0).
func (b *Balancer) SetWeight(addr string, weight float64) error {
	if badFloat(weight) || weight <= 0 {
		return configErr(ErrInvalidWeight, "backend %q: weight %v (want a finite number > 0)", addr, weight)
	}
	return b.change(addr, func(e *endpoint) error {
		e.b.Weight = weight
		e.weight.Store(math.Float64bits(weight))
		return nil
	})
}

// SetHealthy records the verdict of an active health check: an unhealthy
// backend leaves rotation, a healthy one returns.
func (b *Balancer) SetHealthy(addr string, healthy bool) error {
	return b.change(addr, func(e *endpoint) error {
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

// Update replaces the backend set with backends at once: new addresses
// are added, missing ones removed, and existing ones keep their counters
// and health (a changed Zone, Coord or Capacity replaces the backend).
// [Follow] drains missing backends instead of cutting them.
func (b *Balancer) Update(backends []Backend) error {
	if b.build == nil {
		return errZeroBalancer
	}
	if len(backends) == 0 {
		return configErr(ErrNoBackends, "an update needs at least one backend")
	}
	return b.apply(backends, nil)
}

// apply makes the backend set bs: new backends are added, weights
// updated, and backends with a changed identity replaced. Missing ones are
// removed at once if leaving is nil (Update), else drained and recorded in
// leaving with their deadline (Follow), and those of leaving that bs
// reports again are put back in rotation.
func (b *Balancer) apply(bs []Backend, leaving map[string]time.Time) error {
	want := make(map[string]Backend, len(bs))
	order := make([]Backend, 0, len(bs))
	for i, be := range bs {
		nb, err := b.validate(be, i)
		if err != nil {
			return err
		}
		if _, dup := want[nb.Addr]; dup {
			return configErr(ErrDuplicateBackend, "%q is listed twice", nb.Addr)
		}
		want[nb.Addr] = nb
		order = append(order, nb)
	}
	now := b.clock()
	var deadline time.Time
	if leaving != nil {
		deadline = time.Now().Add(b.set.DrainTimeout)
	}
	var evs []Event
	b.mu.Lock()
	for _, e := range slices.Clone(b.eps) {
		addr := e.b.Addr
		nb, keep := want[addr]
		switch {
		case keep && sameIdentity(e.b, nb):
			if nb.Weight != e.b.Weight {
				e.b.Weight = nb.Weight
				e.weight.Store(math.Float64bits(nb.Weight))
			}
			if _, ok := leaving[addr]; ok {
				delete(leaving, addr)
				e.draining, e.reason = false, "reported again by the source"
			}
			delete(want, addr)
		case keep || leaving == nil: // changed identity, or Update: removed at once
			ev, _ := b.removeLocked(addr, now)
			delete(leaving, addr)
			evs = append(evs, ev)
		default:
			if _, ok := leaving[addr]; !ok {
				leaving[addr] = deadline
				if !e.draining {
					e.draining, e.reason = true, "no longer reported by the source"
				}
			}
		}
	}
	for _, nb := range order {
		if _, add := want[nb.Addr]; add {
			more, _ := b.addLocked(nb, now) // not present: removed or new
			evs = append(evs, more...)
		}
	}
	more, err := b.rebuildLocked(now)
	b.mu.Unlock()
	b.emit(append(evs, more...))
	return err
}

// sameIdentity reports whether an update leaves a backend's immutable
// fields alone (weights may change in place; anything else replaces it).
func sameIdentity(a, b Backend) bool {
	return a.Zone == b.Zone && a.Capacity == b.Capacity &&
		(a.Coord == nil) == (b.Coord == nil) && (a.Coord == nil || *a.Coord == *b.Coord)
}

// Backends returns the configured backends, in the order added.
func (b *Balancer) Backends() []Backend {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Backend, len(b.eps))
	for i, e := range b.eps {
		out[i] = e.b
	}
	return out
}

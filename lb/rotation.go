package lb

import "fmt"

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

// refresh rebuilds the snapshot after an ejection or ramp ended.
func (b *Balancer) refresh(now int64) *snapshot {
	b.mu.Lock()
	s := b.snap.Load()
	var evs []Event
	if s.hasWake && now >= s.wake {
		evs, _ = b.rebuildLocked(now) // on error the old snapshot stays
		s = b.snap.Load()
	}
	b.mu.Unlock()
	b.emit(evs)
	return s
}

func (b *Balancer) emit(evs []Event) {
	if b.set.OnEvent == nil {
		return
	}
	for _, ev := range evs {
		b.set.OnEvent(ev)
	}
}

// rebuildLocked recomputes every backend's state and the rotation, builds
// the algorithm's picker and publishes the snapshot. It returns the events
// to emit once b.mu is released. Requires b.mu held.
func (b *Balancer) rebuildLocked(now int64) ([]Event, error) {
	var evs []Event
	ns := &snapshot{}
	healthy, total := 0, 0
	var inRotation, all []*endpoint
	slow := b.set.SlowStart != nil
	for _, e := range b.eps {
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
				end := e.rampStart.Load() + int64(b.set.slow.Window)
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
			ns.setWake(e.rampStart.Load() + int64(b.set.slow.Window))
		}
		if st != e.state {
			if reason == "" {
				reason = "state recomputed"
			}
			evs = append(evs, Event{Kind: EventStateChange, Addr: e.b.Addr, From: e.state, To: st, Reason: reason, At: b.at(now)})
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
	panicking := !b.set.DisablePanic && float64(healthy) < b.set.PanicThreshold*float64(total) // never with no backend: 0 < 0 is false
	if panicking {
		inRotation = all
	}
	if panicking != b.panicking {
		kind := EventPanicExit
		if panicking {
			kind = EventPanicEnter
		}
		evs = append(evs, Event{Kind: kind, Reason: fmt.Sprintf("%d of %d backends healthy", healthy, total), At: b.at(now)})
		b.panicking = panicking
	}
	ns.active, ns.panic = inRotation, panicking
	for _, e := range inRotation {
		if e.rampOn.Load() {
			ns.ramping, ns.checks = true, true
		}
		if e.b.Capacity != 0 { // capacities are not negative
			ns.checks = true
		}
	}
	if len(inRotation) > 0 {
		p, err := b.build(inRotation, b)
		if err != nil {
			return evs, err
		}
		ns.picker = p
	}
	b.snap.Store(ns)
	return evs, nil
}

func (s *snapshot) setWake(t int64) {
	if !s.hasWake || t < s.wake {
		s.wake, s.hasWake = t, true
	}
}

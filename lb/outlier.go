package lb

import (
	"fmt"
	"math"
	"time"
)

// Passive outlier detection (see [OutlierOptions]) watches the results that
// callers report through [Pick.Done]: no probes, no extra traffic, and it
// sees exactly the failures real requests meet. Its cost is that a backend
// must fail some real requests before it is ejected; active health checks
// ([HealthChecker]) find a dead backend without sacrificing requests but
// miss one that answers probes and fails real work. Envoy runs both, and so
// can this package.

// outlierObserve feeds one result to outlier detection. now is the clock if
// the caller already read it, or negative.
func (b *Balancer) outlierObserve(e *endpoint, failed bool, now int64) {
	od := &b.set.outlier
	if od.FailurePercent > 0 {
		if now < 0 {
			now = b.clock()
		}
		ws := e.winStart.Load()
		if now-ws >= int64(od.Interval) && e.winStart.CompareAndSwap(ws, now) {
			req, fail := e.winReq.Swap(0), e.winFail.Swap(0)
			if req >= uint64(od.MinRequests) && float64(fail)*100 >= od.FailurePercent*float64(req) {
				b.eject(e, now, fmt.Sprintf("%d of %d requests failed in %v", fail, req, time.Duration(now-ws)))
			}
		}
		e.winReq.Add(1)
		if failed {
			e.winFail.Add(1)
		}
	}
	if !failed {
		if e.consecutive.Load() != 0 {
			e.consecutive.Store(0)
		}
		return
	}
	// ConsecutiveFailures is never 0 here (0 means 5), so > 0 and >= 0
	// agree; and a now of exactly 0 read again only moves on.
	if n := e.consecutive.Add(1); od.ConsecutiveFailures > 0 && n >= int64(od.ConsecutiveFailures) {
		if now < 0 {
			now = b.clock()
		}
		b.eject(e, now, fmt.Sprintf("%d consecutive failures", n))
	}
}

// eject takes e out of rotation unless it is already out or the ejection
// cap is reached.
func (b *Balancer) eject(e *endpoint, now int64, reason string) {
	od := &b.set.outlier
	b.mu.Lock()
	if b.byAddr[e.b.Addr] != e || e.ejected || e.draining {
		b.mu.Unlock()
		return
	}
	ejected := 0
	for _, x := range b.eps {
		if x.ejected && now < x.ejectedUntil {
			ejected++
		}
	}
	limit := max(1, int(math.Floor(od.MaxEjectionPercent*float64(len(b.eps))/100)))
	if ejected >= limit {
		b.mu.Unlock()
		return
	}
	// The ejection time grows with each ejection; a backend that stayed in
	// rotation for MaxEjectionTime since its last ejection starts afresh.
	if now-e.lastEjection > int64(od.MaxEjectionTime)+int64(od.BaseEjectionTime)*int64(e.ejections) {
		e.ejections = 0
	}
	e.ejections++
	e.ejectTotal++
	e.ejected = true
	e.lastEjection = now
	e.ejectedUntil = now + min(int64(od.BaseEjectionTime)*int64(e.ejections), int64(od.MaxEjectionTime))
	e.consecutive.Store(0)
	e.reason = reason
	evs, _ := b.rebuildLocked(now)
	b.mu.Unlock()
	b.emit(evs)
}

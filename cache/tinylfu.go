package cache

// W-TinyLFU — window TinyLFU, the admission policy of Caffeine and otter.
//
// New entries enter a small window (1% of the capacity at first, then tuned
// by hill climbing on the hit ratio, as in Caffeine: see hillclimb.go).
// When the window overflows, its oldest entry not read since it got there becomes a
// candidate for the main area, a segmented LRU (80% protected, 20%
// probation). The candidate is admitted only if a frequency sketch — a 4-bit
// count-min sketch that also counts lookups of absent keys and halves every
// counter every 10×capacity lookups so old popularity decays — says it is
// more popular than the probation area's victim; otherwise the candidate
// goes. A probation entry that is read again moves to protected; protected's
// overflow falls back to probation.
//
// As in [LFU], reads only count the hit in the entry (see [table.Node.Touch]);
// the policy applies the counts lazily, at the moments they decide
// something, as CLOCK does for LRU: the window's and protected's oldest
// entries, if read, take their hits into the sketch and go back to the
// front of their segment instead of moving on, so a candidate competes
// with every read it got; and a probation entry about to be compared or
// evicted that was read is promoted to protected then. Lookups of absent
// keys, which have no entry to count in, are buffered per goroutine and
// replayed into the sketch by the next write (see stripe.go).
//
// Pros: near-optimal hit ratio on skewed (Zipf) workloads; a scan of cold
// keys passes through the window without displacing the hot set; the
// window and the aging sketch follow a shifting working set. Cons: more
// state (a few bytes per entry for the sketch) and more code than LRU; a
// new key needs a few hits to win admission, so a burst of genuinely new
// keys takes slightly longer to settle. Use it as the default ("the modern
// policy" of the guide's LRU/LFU trade-off).
type tinyLFU[K comparable, V any] struct {
	window, probation, protected lruList[K, V]
	// cand is the entry that last left the window, while it waits in
	// probation for an admission decision.
	cand                *node[K, V]
	capacity, windowCap int64
	protectedCap        int64
	sketch              sketch
	climb               hillClimber
}

// tinyLFUHitLimit caps the hits an entry collects between two decisions:
// the sketch's counters hold at most 15.
const tinyLFUHitLimit = 15

const (
	inWindow uint32 = iota
	inProbation
	inProtected
)

func newTinyLFU[K comparable, V any](capacity int64) *tinyLFU[K, V] {
	p := &tinyLFU[K, V]{capacity: capacity, sketch: newSketch(capacity), climb: newHillClimber(capacity)}
	p.resize(max(1, capacity/100))
	return p
}

func (p *tinyLFU[K, V]) resize(window int64) {
	p.windowCap = min(max(window, 1), max(p.capacity-1, 1))
	p.protectedCap = (p.capacity - p.windowCap) * 8 / 10
	p.spill()
	p.fitProtected()
}

// credit moves the hits e collected into the sketch and returns them.
func (p *tinyLFU[K, V]) credit(e *node[K, V]) uint32 {
	n := takeHits(e)
	if n > 0 { // adding 0 changes nothing: >= agrees
		p.sketch.add(e.Hash, n)
	}
	return n
}

// spill moves the window's overflow, oldest first, to probation; the entry
// moved last is the admission candidate at the next eviction. An entry
// read in the window gets one more pass through it instead (at most as
// many passes per call as the window holds entries, so the loop ends).
func (p *tinyLFU[K, V]) spill() {
	chances := p.window.len
	for p.window.weight > p.windowCap && p.window.len > 1 {
		c := p.window.tail
		if p.credit(c) > 0 && chances > 0 { // credit clears the hits, so no entry passes twice: the count only bounds the loop
			chances--
			p.window.moveToFront(c)
			continue
		}
		p.window.remove(c)
		c.Slot = inProbation
		p.probation.pushFront(c)
		p.cand = c
	}
}

// observe feeds a batch of lookups to the sketch's aging clock and to the
// hill climber, and resizes the window when the climber says so.
func (p *tinyLFU[K, V]) observe(hits, misses uint64) {
	p.sketch.tick(hits + misses)
	if d := p.climb.climb(hits, misses); d != 0 {
		p.resize(p.windowCap + d)
	}
}

func (p *tinyLFU[K, V]) add(e *node[K, V]) {
	p.sketch.increment(e.Hash)
	e.Slot = inWindow
	p.window.pushFront(e)
	p.spill() // full or not, so the main area fills with window overflow
}

func (p *tinyLFU[K, V]) miss(h uint64)      { p.sketch.increment(h) }
func (p *tinyLFU[K, V]) update(*node[K, V]) {}

// promote moves a probation entry that was read to protected's front and
// lets protected's overflow fall back to probation. Protected's oldest
// entry, if read since it got there, gets a second chance at the front
// instead (at most one per entry, so the loop ends).
func (p *tinyLFU[K, V]) promote(e *node[K, V]) {
	if e == p.cand {
		p.cand = nil
	}
	p.probation.remove(e)
	e.Slot = inProtected
	p.protected.pushFront(e)
	p.fitProtected()
}

// fitProtected lets protected's overflow fall back to probation.
// Protected's oldest entry, if read since it got there, gets a second
// chance at the front instead (at most one per entry, so the loop ends).
func (p *tinyLFU[K, V]) fitProtected() {
	chances := p.protected.len
	for p.protected.weight > p.protectedCap && p.protected.len > 1 {
		d := p.protected.tail
		if chances > 0 && p.credit(d) > 0 {
			chances--
			p.protected.moveToFront(d)
			continue
		}
		p.protected.remove(d)
		d.Slot = inProbation
		p.probation.pushFront(d)
	}
}

func (p *tinyLFU[K, V]) list(e *node[K, V]) *lruList[K, V] {
	switch e.Slot {
	case inWindow:
		return &p.window
	case inProbation:
		return &p.probation
	}
	return &p.protected
}

func (p *tinyLFU[K, V]) remove(e *node[K, V]) {
	if e == p.cand {
		p.cand = nil
	}
	p.list(e).remove(e)
}

// victim first promotes the candidate and the probation entries at the
// back that were read, then lets the sketch pick between the candidate
// and probation's oldest entry; the less popular one goes.
func (p *tinyLFU[K, V]) victim() *node[K, V] {
	if c := p.cand; c != nil && p.credit(c) > 0 {
		p.promote(c)
	}
	for range p.probation.len {
		t := p.probation.tail
		if p.credit(t) == 0 {
			break
		}
		p.promote(t)
	}
	cand, other := p.cand, p.probation.tail
	if other == nil {
		if p.protected.tail != nil {
			return p.protected.tail
		}
		return p.window.tail
	}
	if cand == nil {
		return other
	}
	if other == cand {
		other = p.protected.tail
		if other == nil {
			return cand
		}
		p.credit(other)
	}
	if p.sketch.estimate(cand.Hash) > p.sketch.estimate(other.Hash) {
		return other
	}
	return cand
}

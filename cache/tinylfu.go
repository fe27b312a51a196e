package cache

import (
	"math"
	"math/bits"
)

// W-TinyLFU — window TinyLFU, the admission policy of Caffeine and otter.
//
// New entries enter a small window (1% of the capacity at first, then tuned
// by hill climbing on the hit ratio, as in Caffeine). When the window
// overflows, its oldest entry not read since it got there becomes a
// candidate for the main area, a segmented LRU (80% protected, 20%
// probation). The candidate is admitted only if a frequency sketch — a 4-bit
// count-min sketch that also counts lookups of absent keys and halves every
// counter every 10×capacity lookups so old popularity decays — says it is
// more popular than the probation area's victim; otherwise the candidate
// goes. A probation entry that is read again moves to protected; protected's
// overflow falls back to probation.
//
// As in [LFU], reads only count the hit in the entry (see [node.touch]);
// the policy applies the counts lazily, at the moments they decide
// something, as CLOCK does for LRU: the window's and protected's oldest
// entries, if read, take their hits into the sketch and go back to the
// front of their segment instead of moving on, so a candidate competes
// with every read it got; and a probation entry about to be compared or
// evicted that was read is promoted to protected then. Lookups of absent
// keys, which have no entry to count in, are buffered per goroutine and
// replayed into the sketch by the next write (see counter).
//
// When the hit ratio drops sharply, the working set has likely moved: the
// sketch is halved and protected's entries fall back to probation to earn
// their place again (see shiftDetector); this is not in Caffeine, whose
// hill climber alone adapts more slowly.
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
	cand                *entry[K, V]
	capacity, windowCap int64
	protectedCap        int64
	sketch              sketch
	climb               hillClimber
	shift               shiftDetector
}

// tinyLFUHitLimit caps the hits an entry collects between two decisions:
// the sketch's counters hold at most 15.
const tinyLFUHitLimit = 15

// hillClimber resizes the window as Caffeine does: every sample of
// 10×capacity lookups it compares the hit ratio with the previous sample's
// and keeps moving the window size in the direction that helped (a larger
// window favours recency, a smaller one frequency), in steps that start at
// 6.25% of the capacity and decay while the ratio is stable.
type hillClimber struct {
	hits, samples int64
	prevRate      float64
	step          float64
}

const (
	inWindow uint8 = iota
	inProbation
	inProtected
)

func newTinyLFU[K comparable, V any](capacity int64) *tinyLFU[K, V] {
	p := &tinyLFU[K, V]{capacity: capacity, sketch: newSketch(capacity)}
	p.climb.step = 0.0625 * float64(capacity)
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
func (p *tinyLFU[K, V]) credit(e *entry[K, V]) uint32 {
	n := e.takeHits()
	if n > 0 {
		p.sketch.add(e.hash, n)
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
		if p.credit(c) > 0 && chances > 0 {
			chances--
			p.window.moveToFront(c)
			continue
		}
		p.window.remove(c)
		c.queue = inProbation
		p.probation.pushFront(c)
		p.cand = c
	}
}

// shiftDetector notices that the working set moved: it compares the hit
// ratio of each window of lookups with a running average of the earlier
// windows. The hill climber samples 10×capacity lookups per step, too
// slowly to react within a phase of a shifting workload; this looks at
// windows of one capacity (at least minShiftWindow lookups, so that a
// small cache's noise does not trigger it).
type shiftDetector struct {
	hits, samples int64   // the current window
	avg           float64 // exponential average of past windows' hit ratios
	quiet         int64   // lookups before it may trigger again
}

const (
	minShiftWindow = 4096
	shiftDrop      = 0.05 // a fall of 5 points below the average
)

// observe counts a batch of lookups and reports whether the window that
// just ended fell shiftDrop below the average; after that it stays quiet
// for ten windows, while the cache learns the new working set. A scan
// long enough to lower a whole window also triggers it: the hot set then
// loses its protection but stays cached, and wins it back as it is read.
func (d *shiftDetector) observe(hits, misses uint64, capacity int64) bool {
	n := int64(hits + misses)
	d.hits += int64(hits)
	d.samples += n
	d.quiet -= n
	window := max(capacity, minShiftWindow)
	if d.samples < window {
		return false
	}
	rate := float64(d.hits) / float64(d.samples)
	d.hits, d.samples = 0, 0
	switch {
	case d.avg == 0:
		d.avg = rate
	case rate < d.avg-shiftDrop && d.quiet <= 0:
		d.avg, d.quiet = rate, 10*window
		return true
	default:
		d.avg = 0.9*d.avg + 0.1*rate
	}
	return false
}

// release reacts to a moved working set: the sketch is halved, since the
// popularity it remembers is the old set's, and protected's entries lose
// their protection and the hits they banked — they stay cached, in
// probation, where those read again are promoted back and the rest
// compete with the newcomers by frequency. Without this, the old hot set keeps protected (80% of the
// cache) until the new keys are promoted one by one.
func (p *tinyLFU[K, V]) release() {
	p.sketch.age()
	for p.protected.tail != nil {
		d := p.protected.tail
		p.protected.remove(d)
		d.node.mark.Store(0) // hits banked before the move do not count
		d.queue = inProbation
		p.probation.pushFront(d)
	}
}

// observe feeds a batch of lookups to the hill climber, the shift detector
// and the sketch's aging clock.
func (p *tinyLFU[K, V]) observe(hits, misses uint64) {
	p.sketch.tick(hits + misses)
	if p.shift.observe(hits, misses, p.capacity) {
		p.release()
	}
	c := &p.climb
	c.hits += int64(hits)
	c.samples += int64(hits + misses)
	if c.samples < 10*p.capacity {
		return
	}
	rate := float64(c.hits) / float64(c.samples)
	change := rate - c.prevRate
	amount := c.step
	if change < 0 {
		amount = -amount
	}
	if math.Abs(change) >= 0.05 {
		c.step = math.Copysign(0.0625*float64(p.capacity), amount)
	} else {
		c.step = 0.98 * amount
	}
	c.prevRate, c.hits, c.samples = rate, 0, 0
	p.resize(p.windowCap + int64(math.Round(amount)))
}

func (p *tinyLFU[K, V]) add(e *entry[K, V]) {
	p.sketch.increment(e.hash)
	e.queue = inWindow
	p.window.pushFront(e)
	p.spill() // full or not, so the main area fills with window overflow
}

func (p *tinyLFU[K, V]) miss(h uint64)       { p.sketch.increment(h) }
func (p *tinyLFU[K, V]) update(*entry[K, V]) {}

// promote moves a probation entry that was read to protected's front and
// lets protected's overflow fall back to probation. Protected's oldest
// entry, if read since it got there, gets a second chance at the front
// instead (at most one per entry, so the loop ends).
func (p *tinyLFU[K, V]) promote(e *entry[K, V]) {
	if e == p.cand {
		p.cand = nil
	}
	p.probation.remove(e)
	e.queue = inProtected
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
		d.queue = inProbation
		p.probation.pushFront(d)
	}
}

func (p *tinyLFU[K, V]) list(e *entry[K, V]) *lruList[K, V] {
	switch e.queue {
	case inWindow:
		return &p.window
	case inProbation:
		return &p.probation
	}
	return &p.protected
}

func (p *tinyLFU[K, V]) remove(e *entry[K, V]) {
	if e == p.cand {
		p.cand = nil
	}
	p.list(e).remove(e)
}

// victim first promotes the candidate and the probation entries at the
// back that were read, then lets the sketch pick between the candidate
// and probation's oldest entry; the less popular one goes.
func (p *tinyLFU[K, V]) victim() *entry[K, V] {
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
	if p.sketch.estimate(cand.hash) > p.sketch.estimate(other.hash) {
		return other
	}
	return cand
}

// sketch is a count-min sketch of 4-bit counters, 16 to a word, with four
// hash functions; counters halve every sampleSize lookups (aging). As in
// Caffeine, a key's four counters lie in one 64-byte block (8 words), so an
// update touches one cache line.
type sketch struct {
	table      []uint64
	blockMask  uint64
	lookups    int64 // since the last halving, plus half the ones before
	sampleSize int64
}

func newSketch(capacity int64) sketch {
	n := min(max(capacity, 64), 1<<24)
	words := uint64(1) << bits.Len64(uint64(n-1))
	return sketch{table: make([]uint64, words), blockMask: words/8 - 1, sampleSize: 10 * n}
}

// slot returns the word and bit offset of the i-th counter for h.
func (s *sketch) slot(h uint64, i int) (int, uint) {
	x := h * 0x9e3779b97f4a7c15
	block := (x >> 32) & s.blockMask
	w := block*8 + uint64(i)*2 + (x>>uint(i))&1
	return int(w), uint((x>>(8+4*i))&15) * 4
}

func (s *sketch) increment(h uint64) { s.add(h, 1) }

// add adds n to h's counters, saturating at 15.
func (s *sketch) add(h uint64, n uint32) {
	for i := range 4 {
		w, off := s.slot(h, i)
		if c := (s.table[w] >> off) & 15; c < 15 {
			s.table[w] += min(uint64(n), 15-c) << off
		}
	}
}

// tick advances the aging clock by n lookups.
func (s *sketch) tick(n uint64) {
	s.lookups += int64(n)
	if s.lookups >= s.sampleSize {
		s.age()
	}
}

func (s *sketch) estimate(h uint64) uint64 {
	m := uint64(15)
	for i := range 4 {
		w, off := s.slot(h, i)
		m = min(m, (s.table[w]>>off)&15)
	}
	return m
}

// age halves every counter.
func (s *sketch) age() {
	for i := range s.table {
		s.table[i] = (s.table[i] >> 1) & 0x7777777777777777
	}
	s.lookups /= 2
}

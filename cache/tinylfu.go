package cache

import (
	"math"
	"math/bits"
)

// W-TinyLFU — window TinyLFU, the admission policy of Caffeine and otter.
//
// New entries enter a small LRU window (1% of the capacity at first, then
// tuned by hill climbing on the hit ratio, as in Caffeine). When the
// window overflows, its least recent entry becomes a candidate for the
// main area, a segmented LRU (80% protected, 20% probation). The candidate
// is admitted only if a frequency sketch — a 4-bit count-min sketch that
// also counts lookups of absent keys and halves every counter after
// 10×capacity increments so old popularity decays — says it is more
// popular than the probation area's victim; otherwise the candidate goes.
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
	capacity, windowCap          int64
	protectedCap                 int64
	sketch                       sketch
	climb                        hillClimber
}

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
}

// spill moves the window's overflow to probation; the entry moved last is
// the admission candidate at the next eviction.
func (p *tinyLFU[K, V]) spill() {
	for p.window.weight > p.windowCap && p.window.len > 1 {
		c := p.window.tail
		p.window.remove(c)
		c.queue = inProbation
		p.probation.pushFront(c)
	}
}

// record feeds one lookup to the hill climber.
func (p *tinyLFU[K, V]) record(hit bool) {
	c := &p.climb
	c.samples++
	if hit {
		c.hits++
	}
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

func (p *tinyLFU[K, V]) miss(h uint64) {
	p.sketch.increment(h)
	p.record(false)
}

func (p *tinyLFU[K, V]) access(e *entry[K, V]) {
	p.sketch.increment(e.hash)
	p.record(true)
	switch e.queue {
	case inWindow:
		p.window.moveToFront(e)
	case inProbation:
		p.probation.remove(e)
		e.queue = inProtected
		p.protected.pushFront(e)
		for p.protected.weight > p.protectedCap && p.protected.len > 1 {
			d := p.protected.tail
			p.protected.remove(d)
			d.queue = inProbation
			p.probation.pushFront(d)
		}
	case inProtected:
		p.protected.moveToFront(e)
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

func (p *tinyLFU[K, V]) remove(e *entry[K, V]) { p.list(e).remove(e) }

// victim lets the sketch pick between the admission candidate (the entry
// that most recently left the window, at probation's head) and probation's
// least recent entry; the less popular one goes.
func (p *tinyLFU[K, V]) victim() *entry[K, V] {
	cand, other := p.probation.head, p.probation.tail
	if cand == nil {
		if p.protected.tail != nil {
			return p.protected.tail
		}
		return p.window.tail
	}
	if other == cand {
		other = p.protected.tail
		if other == nil {
			return cand
		}
	}
	if p.sketch.estimate(cand.hash) > p.sketch.estimate(other.hash) {
		return other
	}
	return cand
}

// sketch is a count-min sketch of 4-bit counters, 16 to a word, with four
// hash functions; counters halve after sampleSize increments (aging). As in
// Caffeine, a key's four counters lie in one 64-byte block (8 words), so an
// update touches one cache line.
type sketch struct {
	table      []uint64
	blockMask  uint64
	additions  int64
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

func (s *sketch) increment(h uint64) {
	added := false
	for i := range 4 {
		w, off := s.slot(h, i)
		if (s.table[w]>>off)&15 < 15 {
			s.table[w] += 1 << off
			added = true
		}
	}
	if added {
		s.additions++
		if s.additions >= s.sampleSize {
			s.age()
		}
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
	s.additions /= 2
}

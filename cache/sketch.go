package cache

import "math/bits"

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

// sketchCounters is the number of counters per row of a sketch for
// capacity.
func sketchCounters(capacity int64) int64 { return min(max(capacity, 64), 1<<24) }

// sketchSampleSize is the aging period of a sketch for capacity, in
// lookups: ten per counter, as in Caffeine.
func sketchSampleSize(capacity int64) int64 { return 10 * sketchCounters(capacity) }

func newSketch(capacity int64) sketch {
	n := sketchCounters(capacity)
	words := uint64(1) << bits.Len64(uint64(n-1))
	return sketch{table: make([]uint64, words), blockMask: words/8 - 1, sampleSize: sketchSampleSize(capacity)}
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
		if c := (s.table[w] >> off) & 15; c < 15 { // at 15 the add below is 0: <= agrees
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

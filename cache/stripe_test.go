package cache

import (
	"testing"
	"unsafe"
)

// The dirty mask and each stripe sit on cache lines of their own.
func TestStripeLayout(t *testing.T) {
	var s counters
	for _, off := range []uintptr{unsafe.Offsetof(s.c), unsafe.Sizeof(s), unsafe.Sizeof(counter{})} {
		if off%cacheLine != 0 {
			t.Errorf("offset or size %d is not a whole number of cache lines", off)
		}
	}
	if got := unsafe.Offsetof(s.c); got != cacheLine {
		t.Errorf("stripes at offset %d, want %d", got, cacheLine)
	}
}

// Misses are replayed once each, the last ringSize of each stripe, in order;
// hits and misses are counted exactly.
func TestStripeReplay(t *testing.T) {
	var s counters
	for h := range uint64(3) {
		s.miss(1, h, true)
	}
	for h := range uint64(ringSize + 5) {
		s.miss(2, 100+h, true)
	}
	s.miss(3, 999, false) // counted, not buffered
	s.hit(0)
	var got []uint64
	s.replay(func(h uint64) { got = append(got, h) })
	if len(got) != 3+ringSize || got[0] != 0 || got[2] != 2 || got[3] != 105 || got[len(got)-1] != 100+ringSize+4 {
		t.Errorf("replayed %v", got)
	}
	got = got[:0]
	s.replay(func(h uint64) { got = append(got, h) })
	if len(got) != 0 {
		t.Errorf("replayed again: %v", got)
	}
	if hits, misses := s.sum(); hits != 1 || misses != 3+ringSize+5+1 {
		t.Errorf("Sum = %d, %d", hits, misses)
	}
}

// Hint spreads over the stripes and stays in range.
func TestStripeHint(t *testing.T) {
	for shard := range uint64(100) {
		if i := stripeHint(shard); i >= stripes {
			t.Fatalf("stripeHint(%d) = %d", shard, i)
		}
	}
}

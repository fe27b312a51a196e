package stripe

import (
	"testing"
	"unsafe"
)

// The dirty mask and each stripe sit on cache lines of their own.
func TestLayout(t *testing.T) {
	var s Counters
	for _, off := range []uintptr{unsafe.Offsetof(s.c), unsafe.Sizeof(s), unsafe.Sizeof(counter{})} {
		if off%CacheLine != 0 {
			t.Errorf("offset or size %d is not a whole number of cache lines", off)
		}
	}
	if got := unsafe.Offsetof(s.c); got != CacheLine {
		t.Errorf("stripes at offset %d, want %d", got, CacheLine)
	}
}

// Misses are replayed once each, the last Ring of each stripe, in order;
// hits and misses are counted exactly.
func TestReplay(t *testing.T) {
	var s Counters
	for h := range uint64(3) {
		s.Miss(1, h, true)
	}
	for h := range uint64(Ring + 5) {
		s.Miss(2, 100+h, true)
	}
	s.Miss(3, 999, false) // counted, not buffered
	s.Hit(0)
	var got []uint64
	s.Replay(func(h uint64) { got = append(got, h) })
	if len(got) != 3+Ring || got[0] != 0 || got[2] != 2 || got[3] != 105 || got[len(got)-1] != 100+Ring+4 {
		t.Errorf("replayed %v", got)
	}
	got = got[:0]
	s.Replay(func(h uint64) { got = append(got, h) })
	if len(got) != 0 {
		t.Errorf("replayed again: %v", got)
	}
	if hits, misses := s.Sum(); hits != 1 || misses != 3+Ring+5+1 {
		t.Errorf("Sum = %d, %d", hits, misses)
	}
}

// Hint spreads over the stripes and stays in range.
func TestHint(t *testing.T) {
	for shard := range uint64(100) {
		if i := Hint(shard); i >= N {
			t.Fatalf("Hint(%d) = %d", shard, i)
		}
	}
}

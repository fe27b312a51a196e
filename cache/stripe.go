package cache

// The read stripes: a shard's lookup counters, striped so that readers on
// different cores count on different cache lines.
//
// A stripe is chosen per goroutine ([stripeHint]), not per key: choosing by key
// would make every core reading a hot key write the same line. Each stripe
// counts exact hits and misses for the shard's statistics and keeps the
// hashes of its last [ringSize] misses, which the shard's next write replays
// into the eviction policy's frequency sketch ([counters.replay]).

import (
	"math/bits"
	"sync/atomic"
	"unsafe"
)

const (
	stripeBits = 3               // log2 of the number of stripes
	stripes    = 1 << stripeBits // stripes per shard
	ringSize   = 16              // misses a stripe buffers before it drops the oldest
	cacheLine  = 64              // the size the layouts pad to
)

// counter is one stripe, on cache lines of its own.
type counter struct {
	hits, misses atomic.Uint64
	missed       [ringSize]atomic.Uint64 // key hashes, indexed by the miss count
	replayed     uint64                  // guarded by the shard's lock: misses already replayed
	_            [3*cacheLine - 24 - 8*ringSize]byte
}

// counters are a shard's striped counters. The zero value is ready to use.
// Hit and Miss are safe for concurrent use; Replay requires the shard's
// lock. Its size is a whole number of cache lines and its stripes start
// on line boundaries relative to it (a test checks the padding).
type counters struct {
	// dirty has bit i set while stripe i holds misses not yet replayed.
	// Readers set bits, writers clear them.
	dirty atomic.Uint32
	_     [cacheLine - 4]byte
	c     [stripes]counter
}

// Hint picks the stripe for the calling goroutine: a hash of the address
// of a local variable, which lies on the goroutine's own stack, mixed with
// the shard's index. Goroutines running in parallel therefore count in
// different cache lines even when they read the same hot key.
func stripeHint(shard uint64) uint64 {
	var local byte
	sp := uint64(uintptr(unsafe.Pointer(&local))) >> 11 // stacks are ≥2 KiB apart
	return ((sp ^ shard<<32) * 0x9e3779b97f4a7c15) >> (64 - stripeBits)
}

// Hit counts a hit in stripe i.
func (s *counters) hit(i uint64) { s.c[i].hits.Add(1) }

// Miss counts a miss of the key with hash h in stripe i and, with keep,
// buffers h for [counters.replay]: a store to a line the core owns.
func (s *counters) miss(i, h uint64, keep bool) {
	c := &s.c[i]
	j := c.misses.Add(1) - 1
	if !keep {
		return
	}
	c.missed[j%ringSize].Store(h)
	if bit := uint32(1) << i; s.dirty.Load()&bit == 0 {
		s.dirty.Or(bit)
	}
}

// Replay calls fn with the hashes of the misses buffered since the last
// call — the last ringSize of each stripe — so that a write sees the misses
// before it: a goroutine that writes after each miss (cache-aside) loses
// none, whichever stripe its lookups used, and a single-goroutine run is
// reproducible. A miss counted but not yet stored when this runs is
// replayed with the value its slot held a lap earlier, or lost; a
// frequency sketch tolerates both. It requires the shard's lock.
func (s *counters) replay(fn func(h uint64)) {
	if s.dirty.Load() == 0 {
		return // a swap would take the line from the readers, for nothing
	}
	for d := s.dirty.Swap(0); d != 0; d &= d - 1 {
		c := &s.c[bits.TrailingZeros32(d)]
		tail := c.misses.Load()
		for j := max(c.replayed, tail-min(tail, ringSize)); j < tail; j++ {
			fn(c.missed[j%ringSize].Load())
		}
		c.replayed = tail
	}
}

// Sum returns the hits and misses counted so far. It reads every stripe —
// lines other cores write — so callers on a hot path should not call it
// on each operation.
func (s *counters) sum() (hits, misses uint64) {
	for i := range s.c {
		hits += s.c[i].hits.Load()
		misses += s.c[i].misses.Load()
	}
	return hits, misses
}

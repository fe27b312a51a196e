package cache

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The table is the smallest power of two of words holding the counters,
// and a key's four counters lie in four different words of one 64-byte
// block.
func TestSketchLayout(t *testing.T) {
	for capacity, words := range map[int64]int{1: 64, 64: 64, 65: 128, 100: 128, 1024: 1024} {
		assert.Len(t, newSketch(capacity).table, words, "capacity %d", capacity)
	}
	s := newSketch(1000)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10_000 {
		h := rng.Uint64()
		seen := map[int]bool{}
		w0, _ := s.slot(h, 0)
		for i := range 4 {
			w, off := s.slot(h, i)
			require.Less(t, w, len(s.table))
			require.Equal(t, w0/8, w/8, "hash %x: counter %d in another block", h, i)
			require.False(t, seen[w], "hash %x: two counters in word %d", h, w)
			require.Less(t, off, uint(64))
			require.Zero(t, off%4)
			seen[w] = true
		}
	}
}

// Counters saturate at 15 and halve once sampleSize lookups have been
// ticked, not before.
func TestSketchSaturatesAndAges(t *testing.T) {
	s := newSketch(64)
	const h = 0x1234
	s.add(h, 9)
	s.add(h, 9)
	require.Equal(t, uint64(15), s.estimate(h))
	s.tick(uint64(s.sampleSize - 1))
	require.Equal(t, uint64(15), s.estimate(h), "no aging yet")
	s.tick(1)
	assert.Equal(t, uint64(7), s.estimate(h), "halved")
	assert.Equal(t, s.sampleSize/2, s.lookups)
}

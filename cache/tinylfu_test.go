package cache

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// keys lists l's keys from its most recent end.
func keys(l *lruList[int, int]) []int {
	var out []int
	for e := l.head; e != nil; e = e.Next {
		out = append(out, e.Key)
	}
	return out
}

// Protected's overflow falls back to probation oldest first, but an entry
// read since it got there gets one more pass at the front instead.
func TestTinyLFUProtectedSecondChance(t *testing.T) {
	p := newTinyLFU[int, int](100)
	p.protectedCap = 2
	nodes := map[int]*node[int, int]{}
	for k := 1; k <= 4; k++ { // 1 is the oldest
		nodes[k] = &node[int, int]{Key: k, Weight: 1, Slot: inProtected}
		p.protected.pushFront(nodes[k])
	}
	nodes[1].Mark.Store(1) // read once
	p.fitProtected()
	assert.Equal(t, []int{1, 4}, keys(&p.protected))
	assert.Equal(t, []int{3, 2}, keys(&p.probation))
	assert.Equal(t, inProbation, nodes[2].Slot)
	assert.Equal(t, inProtected, nodes[1].Slot)
}

// The window's overflow spills to probation oldest first, the last one
// spilled becoming the admission candidate; an entry read in the window
// gets one more pass through it; the window never spills its last entry.
func TestTinyLFUWindowSpill(t *testing.T) {
	p := newTinyLFU[int, int](100)
	p.windowCap = 2
	for k := 1; k <= 4; k++ {
		p.window.pushFront(&node[int, int]{Key: k, Weight: 1, Slot: inWindow})
	}
	p.window.tail.Mark.Store(1) // entry 1, read
	p.spill()
	assert.Equal(t, []int{1, 4}, keys(&p.window))
	assert.Equal(t, []int{3, 2}, keys(&p.probation))
	assert.Equal(t, 3, p.cand.Key)

	q := newTinyLFU[int, int](100)
	q.windowCap = 0
	q.window.pushFront(&node[int, int]{Key: 9, Weight: 1, Slot: inWindow})
	q.spill()
	assert.Equal(t, []int{9}, keys(&q.window), "the last entry stays")
}

// The window's size stays in [1, capacity−1] and protected gets 80 % of
// the rest.
func TestTinyLFUResize(t *testing.T) {
	p := newTinyLFU[int, int](100)
	assert.Equal(t, [2]int64{1, 79}, [2]int64{p.windowCap, p.protectedCap})
	p.resize(1000)
	assert.Equal(t, [2]int64{99, 0}, [2]int64{p.windowCap, p.protectedCap})
	p.resize(-5)
	assert.Equal(t, [2]int64{1, 79}, [2]int64{p.windowCap, p.protectedCap})
	p.resize(51)
	assert.Equal(t, [2]int64{51, 39}, [2]int64{p.windowCap, p.protectedCap})
	q := newTinyLFU[int, int](1)
	assert.Equal(t, [2]int64{1, 0}, [2]int64{q.windowCap, q.protectedCap})
}

// Admission: the sketch keeps the more popular of the candidate and
// probation's oldest entry; without a candidate probation's oldest goes;
// a candidate read since it left the window is promoted instead.
func TestTinyLFUVictim(t *testing.T) {
	setup := func(oldHits, candHits uint32) (*tinyLFU[int, int], *node[int, int], *node[int, int]) {
		p := newTinyLFU[int, int](100)
		old := &node[int, int]{Key: 1, Hash: 0xaaaa, Weight: 1, Slot: inProbation}
		cand := &node[int, int]{Key: 2, Hash: 0xbbbb, Weight: 1, Slot: inProbation}
		p.probation.pushFront(old)
		p.probation.pushFront(cand)
		p.cand = cand
		p.sketch.add(old.Hash, oldHits)
		p.sketch.add(cand.Hash, candHits)
		return p, old, cand
	}
	p, _, cand := setup(5, 1)
	assert.Same(t, cand, p.victim(), "a one-hit newcomer is not admitted")
	p, old, _ := setup(1, 5)
	assert.Same(t, old, p.victim(), "a popular newcomer displaces the old entry")
	p, old, _ = setup(5, 1)
	p.cand = nil
	assert.Same(t, old, p.victim(), "no candidate")
	p, old, cand = setup(5, 1)
	cand.Mark.Store(1) // read in probation
	assert.Same(t, old, p.victim())
	assert.Nil(t, p.cand, "the promoted candidate is no longer one")
	assert.Equal(t, inProtected, cand.Slot)
	p.protectedCap = 0
	p.fitProtected()
	assert.Equal(t, []int{2}, keys(&p.protected), "protected keeps its last entry")
}

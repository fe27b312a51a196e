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

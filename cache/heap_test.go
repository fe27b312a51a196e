package cache

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// The heap under random pushes, re-keyings (up and down) and removals
// from anywhere keeps every node's index and the heap order, and yields
// its entries in (prio, seq) order.
func TestEntryHeapKeepsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h entryHeap[int, int]
	live := map[*node[int, int]]heapItem[int, int]{}
	seq := uint64(0)
	check := func() {
		t.Helper()
		require.Len(t, h, len(live))
		for i, it := range h {
			require.Equal(t, uint32(i), it.e.Slot, "slot of entry %d", i)
			if i > 0 {
				require.False(t, h.less(i, (i-1)/2), "entry %d above its parent", i)
			}
		}
	}
	for range 2000 {
		seq++
		switch op := rng.IntN(4); {
		case op == 0 || len(h) == 0:
			e := &node[int, int]{}
			prio := rng.Int64N(50)
			h.push(e, prio, seq)
			live[e] = heapItem[int, int]{e, prio, seq}
		case op == 1: // lower or raise an entry's key
			e := h[rng.IntN(len(h))].e
			prio := rng.Int64N(50)
			h.set(e, prio, seq)
			live[e] = heapItem[int, int]{e, prio, seq}
		default:
			e := h[rng.IntN(len(h))].e
			h.remove(e)
			delete(live, e)
		}
		check()
	}
	want := make([]heapItem[int, int], 0, len(live))
	for _, it := range live {
		want = append(want, it)
	}
	slices.SortFunc(want, func(a, b heapItem[int, int]) int {
		if a.prio != b.prio {
			return int(a.prio - b.prio)
		}
		return int(a.seq) - int(b.seq)
	})
	for _, w := range want {
		require.Same(t, w.e, h[0].e)
		h.remove(h[0].e)
	}
	require.Empty(t, h)
}

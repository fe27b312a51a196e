package cache

// entryHeap is a binary min-heap of entries ordered by (prio, seq). Each
// entry's Slot holds its index, so it can be fixed or removed in
// O(log n); the ordering keys live in the heap, not in the entries, as
// only the TTL policy needs them.
type entryHeap[K comparable, V any] []heapItem[K, V]

type heapItem[K comparable, V any] struct {
	e    *node[K, V]
	prio int64
	seq  uint64 // tie-break
}

func (h entryHeap[K, V]) less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio < h[j].prio // unequal here: < and <= agree
	}
	return h[i].seq < h[j].seq // seqs are unique: < and <= agree
}

func (h entryHeap[K, V]) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].e.Slot, h[j].e.Slot = uint32(i), uint32(j)
}

func (h entryHeap[K, V]) up(i int) {
	for i > 0 { // at i == 0, p would be 0 and less(0, 0) false: >= agrees
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h entryHeap[K, V]) down(i int) bool {
	start := i
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		j := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > start
}

func (h *entryHeap[K, V]) push(e *node[K, V], prio int64, seq uint64) {
	i := len(*h)
	e.Slot = uint32(i)
	*h = append(*h, heapItem[K, V]{e, prio, seq})
	h.up(i)
}

func (h *entryHeap[K, V]) remove(e *node[K, V]) {
	old := *h
	i, last := int(e.Slot), len(old)-1
	if i != last {
		old.swap(i, last)
	}
	old[last] = heapItem[K, V]{}
	*h = old[:last]
	if i != last {
		h.fix(i)
	}
}

// set gives e new ordering keys.
func (h entryHeap[K, V]) set(e *node[K, V], prio int64, seq uint64) {
	i := int(e.Slot)
	h[i].prio, h[i].seq = prio, seq
	h.fix(i)
}

func (h entryHeap[K, V]) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

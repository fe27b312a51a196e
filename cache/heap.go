package cache

// entryHeap is a binary min-heap of entries ordered by (prio, seq), keeping
// each entry's index in e.idx so it can be fixed or removed in O(log n).
type entryHeap[K comparable, V any] []*entry[K, V]

func (h entryHeap[K, V]) less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio < h[j].prio
	}
	return h[i].seq < h[j].seq
}

func (h entryHeap[K, V]) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}

func (h entryHeap[K, V]) up(i int) {
	for i > 0 {
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

func (h *entryHeap[K, V]) push(e *entry[K, V]) {
	e.idx = len(*h)
	*h = append(*h, e)
	h.up(e.idx)
}

func (h *entryHeap[K, V]) remove(e *entry[K, V]) {
	old := *h
	i, last := e.idx, len(old)-1
	if i != last {
		old.swap(i, last)
	}
	old[last] = nil
	*h = old[:last]
	if i != last {
		h.fix(i)
	}
	e.idx = -1
}

func (h entryHeap[K, V]) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

package cache

// LFU — least frequently used, with dynamic aging (LFU-DA).
//
// The guide: "LFU (Least Frequently Used): Evict least frequent items".
// Each entry counts its hits; the entry with the lowest priority is
// evicted, where priority = hits + L and L is the priority of the last
// evicted entry. L only grows, so an entry that was popular long ago but is
// no longer read is eventually overtaken by newcomers: old popularity
// decays instead of pinning the entry forever, the classic flaw of plain
// LFU. Ties go to the least recently used.
//
// Pros: keeps the truly popular keys under a stable skewed (Zipf) workload
// and ignores scans better than LRU. Cons: O(log n) per access (a heap);
// slow to adopt new hot keys after a shift in the working set; counts are
// only kept for resident keys. Use it for stable popularity (catalogue
// pages, configuration); prefer [TinyLFU], which keeps frequency for absent
// keys too and adapts faster.
type lfuPolicy[K comparable, V any] struct {
	h    entryHeap[K, V]
	age  int64 // L: the priority of the last evicted entry
	tick uint64
}

func (p *lfuPolicy[K, V]) add(e *entry[K, V]) {
	p.tick++
	e.prio, e.seq = p.age+1, p.tick
	p.h.push(e)
}

func (p *lfuPolicy[K, V]) access(e *entry[K, V]) {
	p.tick++
	// prio-age is the entry's hit count since it was (re)valued.
	e.prio, e.seq = e.prio+1, p.tick
	p.h.fix(e.idx)
}

func (p *lfuPolicy[K, V]) remove(e *entry[K, V]) { p.h.remove(e) }

func (p *lfuPolicy[K, V]) victim() *entry[K, V] {
	v := p.h[0]
	p.age = max(p.age, v.prio)
	return v
}

func (p *lfuPolicy[K, V]) miss(uint64) {}

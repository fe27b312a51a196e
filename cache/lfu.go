package cache

// LFU — least frequently used, with dynamic aging (LFU-DA).
//
// The guide: "LFU (Least Frequently Used): Evict least frequent items".
// Each entry counts its hits; the entry with the lowest priority is
// evicted, where priority = hits + L and L is the priority of the last
// evicted entry. L only grows, so an entry that was popular long ago but is
// no longer read is eventually overtaken by newcomers: old popularity
// decays instead of pinning the entry forever, the classic flaw of plain
// LFU. Ties go to the entry whose hits were counted least recently.
//
// Reads do not touch the priority heap: a read only counts the hit in the
// entry (see [table.Node.Touch]), lock-free, and the counts are folded into the
// heap when an entry reaches its top. An entry with unfolded hits is
// re-valued and sinks back; the first entry at the top with none is the
// victim. Heap priorities only ever understate an entry's true priority,
// so that victim has the lowest true priority of all — exactly LFU-DA's
// choice — while reads stay as cheap as a map lookup. The count kept
// between folds saturates at lfuHitLimit, so that a hot key's count stops
// changing (and its reads stop writing) after a few hits; that bounds how
// far ahead of the newest entries a hot key gets per pass of L (the lab's
// cache-policies experiment shows what that costs on its workloads).
//
// Pros: keeps the truly popular keys under a stable skewed (Zipf) workload
// and ignores scans better than LRU. Cons: O(log n) per re-valued entry on
// eviction (a heap); slow to adopt new hot keys after a shift in the
// working set; counts are only kept for resident keys. Use it for stable
// popularity (catalogue pages, configuration); prefer [TinyLFU], which
// keeps frequency for absent keys too and adapts faster.
type lfuPolicy[K comparable, V any] struct {
	h    entryHeap[K, V]
	age  int64 // L: the priority of the last evicted entry
	tick uint64
}

// lfuHitLimit caps the hits an LFU entry collects between two folds, as
// the sketch's 4-bit counters cap TinyLFU's.
const lfuHitLimit = 15

func (p *lfuPolicy[K, V]) add(e *node[K, V]) {
	p.tick++
	p.h.push(e, p.age+1, p.tick)
}

func (p *lfuPolicy[K, V]) remove(e *node[K, V]) { p.h.remove(e) }

// victim folds the hits of the entries that reach the top of the heap
// until the top has none. Each fold clears a count, so the loop ends after
// at most one fold per entry even if readers keep counting meanwhile.
func (p *lfuPolicy[K, V]) victim() *node[K, V] {
	for range len(p.h) {
		top := p.h[0]
		n := takeHits(top.e)
		if n == 0 {
			break
		}
		p.tick++
		// prio-age is the entry's hit count since it was (re)valued.
		p.h.set(top.e, top.prio+int64(n), p.tick)
	}
	top := p.h[0]
	p.age = max(p.age, top.prio)
	return top.e
}

func (p *lfuPolicy[K, V]) miss(uint64)            {}
func (p *lfuPolicy[K, V]) update(*node[K, V])     {}
func (p *lfuPolicy[K, V]) observe(uint64, uint64) {}

package cache

// LFU — least frequently used, with dynamic aging (LFU-DA).
//
// The guide: "LFU (Least Frequently Used): Evict least frequent items".
// Each entry counts its hits; the entry with the lowest priority is
// evicted, where priority = hits + L and L is the priority of the last
// evicted entry (Arlitt et al., "Evaluating content management techniques
// for Web proxy caches", 2000). L only grows, so an entry that was popular
// long ago but is no longer read is eventually overtaken by newcomers: old
// popularity decays instead of pinning the entry forever, the classic flaw
// of plain LFU. Ties go to the entry whose hits were counted least
// recently.
//
// The entries are kept as in the O(1) LFU of Shah, Mitra and Matani ("An
// O(1) algorithm for implementing the LFU cache eviction scheme", 2010):
// one group per priority in use, each a list of its entries in the order
// their hits were counted, and the groups in a list by priority. The victim
// is the oldest entry of the lowest group. An entry joins the group of
// L + 1, which is the lowest or next to it (no resident entry is below L),
// and a count of n hits moves it at most n groups up: every step is O(1),
// and the entry's own links (Prev, Next) are all it costs in memory.
//
// Reads do not touch the groups: a read only counts the hit in the entry
// (see [table.Node.Touch]), lock-free, and the counts are folded in when an
// entry is the victim's candidate. A candidate with unfolded hits moves up
// by them, and the next one is considered; the first with none is the
// victim. Filed priorities only ever understate an entry's true priority,
// so that victim has the lowest true priority of all — exactly LFU-DA's
// choice — while reads stay as cheap as a map lookup. The count kept
// between folds saturates at lfuHitLimit, so that a hot key's count stops
// changing (and its reads stop writing) after a few hits; that bounds how
// far ahead of the newest entries a hot key gets per pass of L (the lab's
// cache-policies experiment shows what that costs on its workloads).
//
// Pros: keeps the truly popular keys under a stable skewed (Zipf) workload
// and ignores scans better than LRU; O(1) per operation, amortized over
// the hits an eviction folds in. Cons: slow to adopt new hot keys after a
// shift in the working set; counts are only kept for resident keys. Use
// it for stable popularity (catalogue pages, configuration); prefer
// [TinyLFU], which keeps frequency for absent keys too and adapts faster.
type lfuPolicy[K comparable, V any] struct {
	// groups holds the groups by index, each entry's Slot naming its own.
	// groups[0] is the head of the list of groups: its next is the lowest
	// group, its prev the highest. Emptied groups are reused through free.
	groups []lfuGroup[K, V]
	free   []uint32
	age    int64 // L: the priority of the last evicted entry
	len    int   // entries filed
}

// lfuGroup is the group of entries of one priority.
type lfuGroup[K comparable, V any] struct {
	list       lruList[K, V] // newest count first
	prio       int64
	prev, next uint32 // neighbouring groups by priority; 0 = the head
}

// lfuHitLimit caps the hits an LFU entry collects between two folds, as
// the sketch's 4-bit counters cap TinyLFU's.
const lfuHitLimit = 15

func newLFU[K comparable, V any]() *lfuPolicy[K, V] {
	return &lfuPolicy[K, V]{groups: make([]lfuGroup[K, V], 1)}
}

func (p *lfuPolicy[K, V]) add(e *node[K, V]) {
	p.len++
	p.file(e, p.age+1, 0)
}

// file puts e at the newest end of the group of priority prio, making the
// group if there is none. The search starts after group from, whose
// priority is below prio (0: the head, below all).
func (p *lfuPolicy[K, V]) file(e *node[K, V], prio int64, from uint32) {
	prev, next := from, p.groups[from].next
	for next != 0 && p.groups[next].prio < prio {
		prev, next = next, p.groups[next].next
	}
	g := next
	if g == 0 || p.groups[g].prio != prio {
		g = p.newGroup(prio, prev, next)
	}
	e.Slot = g
	p.groups[g].list.pushFront(e)
}

// newGroup links a new, empty group of priority prio between prev and
// next and returns its index.
func (p *lfuPolicy[K, V]) newGroup(prio int64, prev, next uint32) uint32 {
	var g uint32
	if n := len(p.free); n > 0 {
		g = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		g = uint32(len(p.groups))
		p.groups = append(p.groups, lfuGroup[K, V]{})
	}
	p.groups[g] = lfuGroup[K, V]{prio: prio, prev: prev, next: next}
	p.groups[prev].next = g
	p.groups[next].prev = g
	return g
}

// unfile takes e out of its group.
func (p *lfuPolicy[K, V]) unfile(e *node[K, V]) {
	g := e.Slot
	p.groups[g].list.remove(e)
	p.drop(g)
}

// drop takes group g out of the list if it is empty.
func (p *lfuPolicy[K, V]) drop(g uint32) {
	grp := &p.groups[g]
	if grp.list.len > 0 {
		return
	}
	p.groups[grp.prev].next = grp.next
	p.groups[grp.next].prev = grp.prev
	p.free = append(p.free, g)
}

func (p *lfuPolicy[K, V]) remove(e *node[K, V]) {
	p.len--
	p.unfile(e)
}

// victim folds the hits of the candidates — the oldest entry of the lowest
// group — until one has none. Each fold clears a count, so the loop ends
// after at most one fold per entry even if readers keep counting
// meanwhile.
func (p *lfuPolicy[K, V]) victim() *node[K, V] {
	for range p.len {
		g := p.groups[0].next
		top := p.groups[g].list.tail
		n := takeHits(top)
		if n == 0 {
			break
		}
		// The entry moves up by its hits, filed from its group, which stays
		// linked until drop, as the new priority is higher.
		p.groups[g].list.remove(top)
		p.file(top, p.groups[g].prio+int64(n), g)
		p.drop(g)
	}
	g := p.groups[0].next
	p.age = max(p.age, p.groups[g].prio)
	return p.groups[g].list.tail
}

func (p *lfuPolicy[K, V]) miss(uint64)            {}
func (p *lfuPolicy[K, V]) update(*node[K, V])     {}
func (p *lfuPolicy[K, V]) observe(uint64, uint64) {}

package cache

// TTL-only eviction — first to expire, first out.
//
// The guide: "TTL (Time To Live): Automatic expiration". When the store is
// full, the entry closest to its expiry goes (expired ones first); among
// entries without a TTL, the one written longest ago goes (FIFO, a
// rewrite counting as a new write), and only once no entry with a TTL is
// left. Entries with a TTL sit in a binary heap by expiry, ties by write;
// entries without one sit in a list in write order, which costs nothing
// beyond the entry's own links. Reads do not change the order, so a read
// writes nothing but the hit counter.
//
// Pros: cheapest reads; the memory bound and freshness bound are one
// mechanism; predictable — an entry lives until its TTL unless space runs
// out. Cons: ignores popularity, so under memory pressure its hit ratio is
// the lowest of the policies. Use it when every value has a natural
// lifetime (tokens, sessions, rate windows) and the cache is sized to hold
// the live set.
type ttlPolicy[K comparable, V any] struct {
	h     entryHeap[K, V] // entries with an expiry
	never lruList[K, V]   // entries without, newest first
	tick  uint64          // writes so far: the order among equal expiries
}

// inNever is the Slot of an entry filed in the list of entries without an
// expiry (any other Slot is a heap index).
const inNever = ^uint32(0)

func (p *ttlPolicy[K, V]) add(e *node[K, V]) {
	if exp := e.Expire(); exp != 0 {
		p.tick++
		p.h.push(e, exp, p.tick)
		return
	}
	e.Slot = inNever
	p.never.pushFront(e)
}

func (p *ttlPolicy[K, V]) remove(e *node[K, V]) {
	if e.Slot == inNever {
		p.never.remove(e)
		return
	}
	p.h.remove(e)
}

// update re-files a rewritten entry by its new expiry, as a new one.
func (p *ttlPolicy[K, V]) update(e *node[K, V]) {
	if exp := e.Expire(); exp != 0 && e.Slot != inNever {
		p.tick++
		p.h.set(e, exp, p.tick)
		return
	}
	p.remove(e)
	p.add(e)
}

func (p *ttlPolicy[K, V]) victim() *node[K, V] {
	if len(p.h) > 0 {
		return p.h[0].e
	}
	return p.never.tail
}

func (p *ttlPolicy[K, V]) miss(uint64)            {}
func (p *ttlPolicy[K, V]) observe(uint64, uint64) {}

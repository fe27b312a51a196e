package cache

import "math"

// TTL-only eviction — first to expire, first out.
//
// The guide: "TTL (Time To Live): Automatic expiration". When the store is
// full, the entry closest to its expiry goes (expired ones first); among
// entries without a TTL, the oldest insertion goes (FIFO). Reads do not
// change the order, so a read writes nothing but the hit counter.
//
// Pros: cheapest reads; the memory bound and freshness bound are one
// mechanism; predictable — an entry lives until its TTL unless space runs
// out. Cons: ignores popularity, so under memory pressure its hit ratio is
// the lowest of the policies. Use it when every value has a natural
// lifetime (tokens, sessions, rate windows) and the cache is sized to hold
// the live set.
type ttlPolicy[K comparable, V any] struct {
	h    entryHeap[K, V]
	tick uint64 // writes so far: the FIFO order among equal expiries
}

// key returns e's place in the order: its expiry, then its last write.
func (p *ttlPolicy[K, V]) key(e *node[K, V]) (int64, uint64) {
	p.tick++
	if exp := e.Expire(); exp != 0 {
		return exp, p.tick
	}
	return math.MaxInt64, p.tick
}

func (p *ttlPolicy[K, V]) add(e *node[K, V]) {
	prio, seq := p.key(e)
	p.h.push(e, prio, seq)
}

// update re-files a rewritten entry by its new expiry, as a new one.
func (p *ttlPolicy[K, V]) update(e *node[K, V]) {
	prio, seq := p.key(e)
	p.h.set(e, prio, seq)
}

func (p *ttlPolicy[K, V]) miss(uint64)            {}
func (p *ttlPolicy[K, V]) remove(e *node[K, V])   { p.h.remove(e) }
func (p *ttlPolicy[K, V]) victim() *node[K, V]    { return p.h[0].e }
func (p *ttlPolicy[K, V]) observe(uint64, uint64) {}

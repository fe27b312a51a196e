package cache

// LRU — least recently used.
//
// The guide: "LRU (Least Recently Used): Evict least used items". Every
// access moves an entry to the front of a list; the entry at the back is
// evicted. Pros: O(1), no tuning, adapts at once to a shifting working set.
// Cons: recency is all it knows — one scan over cold keys flushes the whole
// hot set, and a key read once stays as long as one read a million times.
// Use it for workloads dominated by recency (sessions, recent items); prefer
// [TinyLFU] when scans or one-hit wonders are common.
//
// Promotion is lazy, as in memcached and the Linux page cache: a hit on an
// entry that is still among the most recent eighth of its list leaves it in
// place (its position is bounded by the number of entries pushed in front
// of it since its own push), so a hot key costs no list surgery — and no
// writes to its neighbours' cache lines — on most reads. In lists of up to
// 15 entries the order is exact LRU; in longer ones an entry is evicted
// after at least 7/8 of the moves exact LRU would allow.

// lruList is an intrusive doubly linked list; head is the most recent end.
type lruList[K comparable, V any] struct {
	head, tail *entry[K, V]
	weight     int64
	len        int
	pushes     uint64 // pushFront calls; e.pushed - pushes bounds e's position
}

func (l *lruList[K, V]) pushFront(e *entry[K, V]) {
	l.pushes++
	e.pushed = l.pushes
	e.prev, e.next = nil, l.head
	if l.head != nil {
		l.head.prev = e
	} else {
		l.tail = e
	}
	l.head = e
	l.weight += e.weight
	l.len++
}

func (l *lruList[K, V]) remove(e *entry[K, V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	l.weight -= e.weight
	l.len--
}

// moveToFront promotes e, lazily: not when at most len/8 entries (at least
// one) were pushed since e, which keeps e within the front eighth.
func (l *lruList[K, V]) moveToFront(e *entry[K, V]) {
	if l.pushes-e.pushed < uint64(max(l.len/8, 1)) {
		return
	}
	l.remove(e)
	l.pushFront(e)
}

type lruPolicy[K comparable, V any] struct{ l lruList[K, V] }

func (p *lruPolicy[K, V]) add(e *entry[K, V])    { p.l.pushFront(e) }
func (p *lruPolicy[K, V]) access(e *entry[K, V]) { p.l.moveToFront(e) }
func (p *lruPolicy[K, V]) remove(e *entry[K, V]) { p.l.remove(e) }
func (p *lruPolicy[K, V]) victim() *entry[K, V]  { return p.l.tail }
func (p *lruPolicy[K, V]) miss(uint64)           {}

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

// lruList is an intrusive doubly linked list; head is the most recent end.
type lruList[K comparable, V any] struct {
	head, tail *entry[K, V]
	weight     int64
	len        int
}

func (l *lruList[K, V]) pushFront(e *entry[K, V]) {
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

func (l *lruList[K, V]) moveToFront(e *entry[K, V]) {
	if l.head == e {
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

package cache

import "sync/atomic"

// LRU — least recently used.
//
// The guide: "LRU (Least Recently Used): Evict least used items". The
// entry read least recently goes first. Time is kept in epochs: the shard
// starts a new epoch each time 1/lruBuckets of its capacity has been
// inserted, and a read stamps the entry with the current epoch (see
// [table.Node.Stamp]) — a load, and a store only for the first read of the entry
// in an epoch, so reads take no lock and a hot key is read without writes.
// Entries sit in one list per epoch, filed under the epoch they were
// inserted or last filed in. Eviction takes the oldest list's oldest
// entry; if its stamp says it was read since it was filed, it is re-filed
// under the epoch of that read and the next one is considered. The victim
// is therefore an entry of the oldest epoch any entry was last read in:
// exact LRU at the resolution of an epoch (lruBuckets epochs span the
// cache; older ones merge into the oldest list). Re-filing happens only on
// writes, once per entry and epoch at most.
//
// Pros: O(1) amortized, no tuning, adapts at once to a shifting working
// set; reads cost no more than a map lookup. Cons: recency is all it knows
// — one scan over cold keys flushes the whole hot set, and a key read once
// stays as long as one read a million times. Use it for workloads
// dominated by recency (sessions, recent items); prefer [TinyLFU] when
// scans or one-hit wonders are common.
type lruPolicy[K comparable, V any] struct {
	// buckets[i] holds the entries filed under epochs ≡ i (mod
	// lruBuckets), newest first; epochs before oldest are merged into
	// oldest's list.
	buckets     [lruBuckets]lruList[K, V]
	oldest, cur uint32         // epochs of the oldest list and the current one
	epoch       *atomic.Uint32 // the shard's published epoch, read by Get
	span        int64          // weight inserted per epoch
	inserted    int64          // weight inserted in the current epoch
}

// lruBuckets is the number of epochs LRU tells apart: its resolution is
// 1/lruBuckets of the capacity.
const lruBuckets = 64

func newLRU[K comparable, V any](capacity int64, epoch *atomic.Uint32) *lruPolicy[K, V] {
	return &lruPolicy[K, V]{epoch: epoch, span: max(1, capacity/lruBuckets)}
}

// bucket returns the list e is in.
func (p *lruPolicy[K, V]) bucket(e *node[K, V]) *lruList[K, V] {
	ep := e.Slot
	if int32(ep-p.oldest) < 0 { // <= agrees: at ep == oldest it sets the same
		ep = p.oldest
	}
	return &p.buckets[ep%lruBuckets]
}

// advance starts a new epoch, merging the oldest list into the next one
// when every list is in use.
func (p *lruPolicy[K, V]) advance() {
	if p.cur+1-p.oldest == lruBuckets {
		p.buckets[(p.oldest+1)%lruBuckets].appendOlder(&p.buckets[p.oldest%lruBuckets])
		p.oldest++
	}
	p.cur++
	p.epoch.Store(p.cur)
}

func (p *lruPolicy[K, V]) add(e *node[K, V]) {
	p.inserted += e.Weight
	if p.inserted >= p.span {
		for n := min(p.inserted/p.span, lruBuckets); n > 0; n-- {
			p.advance()
		}
		p.inserted %= p.span
	}
	e.Slot = p.cur
	e.Mark.Store(p.cur)
	p.buckets[p.cur%lruBuckets].pushFront(e)
}

func (p *lruPolicy[K, V]) remove(e *node[K, V]) { p.bucket(e).remove(e) }

// victim re-files the oldest entries that were read since they were filed
// until it finds one that was not. Each re-filing moves an entry to a
// strictly newer epoch, no later than the current one (readers stamp only
// published epochs), so the loop ends.
func (p *lruPolicy[K, V]) victim() *node[K, V] {
	for {
		b := &p.buckets[p.oldest%lruBuckets]
		t := b.tail
		if t == nil {
			if p.oldest == p.cur {
				return nil // unreachable: victim is only called on a non-empty store
			}
			p.oldest++
			continue
		}
		m := t.Mark.Load()
		// Not read since filed — or read before its filing by a reader that
		// was slow to store, or last read in an epoch already merged away.
		if int32(m-t.Slot) <= 0 || int32(m-p.oldest) < 0 || int32(m-p.cur) > 0 {
			return t
		}
		b.remove(t)
		t.Slot = m
		p.buckets[m%lruBuckets].pushFront(t)
	}
}

func (p *lruPolicy[K, V]) miss(uint64)            {}
func (p *lruPolicy[K, V]) update(*node[K, V])     {}
func (p *lruPolicy[K, V]) observe(uint64, uint64) {}

// lruList is an intrusive doubly linked list; head is the most recent end.
type lruList[K comparable, V any] struct {
	head, tail *node[K, V]
	weight     int64
	len        int
}

func (l *lruList[K, V]) pushFront(e *node[K, V]) {
	e.Prev, e.Next = nil, l.head
	if l.head != nil {
		l.head.Prev = e
	} else {
		l.tail = e
	}
	l.head = e
	l.weight += e.Weight
	l.len++
}

func (l *lruList[K, V]) remove(e *node[K, V]) {
	if e.Prev != nil {
		e.Prev.Next = e.Next
	} else {
		l.head = e.Next
	}
	if e.Next != nil {
		e.Next.Prev = e.Prev
	} else {
		l.tail = e.Prev
	}
	e.Prev, e.Next = nil, nil
	l.weight -= e.Weight
	l.len--
}

// moveToFront makes e the most recent entry.
func (l *lruList[K, V]) moveToFront(e *node[K, V]) {
	if l.head == e {
		return
	}
	l.remove(e)
	l.pushFront(e)
}

// appendOlder moves every entry of o, which are all older than l's, behind
// l's tail, and empties o.
func (l *lruList[K, V]) appendOlder(o *lruList[K, V]) {
	if o.len == 0 {
		return
	}
	if l.tail == nil {
		l.head = o.head
	} else {
		l.tail.Next = o.head
		o.head.Prev = l.tail
	}
	l.tail = o.tail
	l.len += o.len
	l.weight += o.weight
	*o = lruList[K, V]{}
}

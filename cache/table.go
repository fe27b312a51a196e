package cache

import "sync/atomic"

// table is a shard's hash table: readers walk it without a lock, writers
// change it under the shard's write lock. Chains are immutable — a writer
// publishes a new chain head rather than editing a node — so a reader
// always sees a consistent chain, old or new. Growing builds a new table
// and publishes it in one atomic store.
type table[K comparable, V any] struct {
	buckets []atomic.Pointer[node[K, V]]
	mask    uint64
}

type node[K comparable, V any] struct {
	hash uint64
	e    *entry[K, V]
	next *node[K, V]
}

// hashTable wraps the current table and its entry count.
type hashTable[K comparable, V any] struct {
	cur   atomic.Pointer[table[K, V]]
	count int // guarded by the shard's lock
}

func newTable[K comparable, V any](n int) *table[K, V] {
	size := 8
	for size < n {
		size *= 2
	}
	return &table[K, V]{buckets: make([]atomic.Pointer[node[K, V]], size), mask: uint64(size - 1)}
}

// bucket uses the high half of the hash; the low bits chose the shard.
func (t *table[K, V]) bucket(h uint64) *atomic.Pointer[node[K, V]] {
	return &t.buckets[(h>>32)&t.mask]
}

// get returns the entry for key, or nil. It is safe without the lock.
func (ht *hashTable[K, V]) get(h uint64, key K) *entry[K, V] {
	for n := ht.cur.Load().bucket(h).Load(); n != nil; n = n.next {
		if n.hash == h && n.e.key == key {
			return n.e
		}
	}
	return nil
}

// put inserts e, replacing and returning the entry with the same key. It
// requires the shard's write lock.
func (ht *hashTable[K, V]) put(e *entry[K, V]) *entry[K, V] {
	t := ht.cur.Load()
	if t == nil {
		t = newTable[K, V](8)
		ht.cur.Store(t)
	}
	b := t.bucket(e.hash)
	head := b.Load()
	old := ht.get(e.hash, e.key)
	if old != nil {
		head = without(head, old)
		ht.count--
	}
	b.Store(&node[K, V]{hash: e.hash, e: e, next: head})
	ht.count++
	if ht.count > 2*len(t.buckets) {
		ht.grow(t)
	}
	return old
}

// del removes e. It requires the shard's write lock.
func (ht *hashTable[K, V]) del(e *entry[K, V]) {
	b := ht.cur.Load().bucket(e.hash)
	b.Store(without(b.Load(), e))
	ht.count--
}

// without returns the chain head with e's node left out, copying the nodes
// in front of it.
func without[K comparable, V any](head *node[K, V], e *entry[K, V]) *node[K, V] {
	if head == nil {
		return nil
	}
	if head.e == e {
		return head.next
	}
	return &node[K, V]{hash: head.hash, e: head.e, next: without(head.next, e)}
}

func (ht *hashTable[K, V]) grow(t *table[K, V]) {
	nt := newTable[K, V](2 * len(t.buckets))
	for i := range t.buckets {
		for n := t.buckets[i].Load(); n != nil; n = n.next {
			b := nt.bucket(n.hash)
			b.Store(&node[K, V]{hash: n.hash, e: n.e, next: b.Load()})
		}
	}
	ht.cur.Store(nt)
}

// each calls fn for every entry. It requires the shard's write lock; fn
// may not change the table (collect first, then unlink).
func (ht *hashTable[K, V]) each(fn func(e *entry[K, V])) {
	t := ht.cur.Load()
	if t == nil {
		return
	}
	for i := range t.buckets {
		for n := t.buckets[i].Load(); n != nil; n = n.next {
			fn(n.e)
		}
	}
}

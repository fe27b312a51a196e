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

// node is one link of a chain. It carries copies of the entry's immutable
// fields, so a lookup reads the bucket, the node and the key's bytes and
// never the entry itself, which the policy writes under the lock: one
// pointer hop less on the read path, and no cache line shared with writers.
type node[K comparable, V any] struct {
	hash   uint64
	key    K
	value  V
	expire int64
	e      *entry[K, V]
	next   *node[K, V]
	// mark records reads for the policy without a lock: the hits since
	// the policy last looked (LFU, TinyLFU; see touch) or the epoch of the
	// last read (LRU; see stamp).
	mark atomic.Uint32
}

// touch records a read of n's entry for the policy: it counts the hit in
// the node, which the lookup has just read, up to limit. Once the count is
// at the limit a read writes nothing, so cores reading the same hot key
// share its cache line instead of passing it back and forth. Two readers
// racing may both store the same count, losing a hit: the count only
// guides eviction, and the policy tolerates that loss.
func (n *node[K, V]) touch(limit uint32) {
	if h := n.mark.Load(); h < limit {
		n.mark.Store(h + 1)
	}
}

// stamp records a read of n's entry in epoch ep. Only the first read in an
// epoch writes.
func (n *node[K, V]) stamp(ep uint32) {
	if n.mark.Load() != ep {
		n.mark.Store(ep)
	}
}

// newNode returns a node for e linked to next and makes it e's node.
func newNode[K comparable, V any](e *entry[K, V], next *node[K, V]) *node[K, V] {
	n := &node[K, V]{hash: e.hash, key: e.key, value: e.value, expire: e.expire, e: e, next: next}
	e.node = n
	return n
}

// copyNode returns a copy of n linked to next, keeping its mark. Reads
// recorded in n by readers still walking the old chain are lost.
func copyNode[K comparable, V any](n *node[K, V], next *node[K, V]) *node[K, V] {
	c := newNode(n.e, next)
	c.mark.Store(n.mark.Load())
	return c
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

// find returns the node for key, or nil. It is safe without the lock.
func (ht *hashTable[K, V]) find(h uint64, key K) *node[K, V] {
	for n := ht.cur.Load().bucket(h).Load(); n != nil; n = n.next {
		if n.hash == h && n.key == key {
			return n
		}
	}
	return nil
}

// get returns the entry for key, or nil. It is safe without the lock.
func (ht *hashTable[K, V]) get(h uint64, key K) *entry[K, V] {
	if n := ht.find(h, key); n != nil {
		return n.e
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
	b.Store(newNode(e, head))
	ht.count++
	if 2*ht.count > len(t.buckets) { // load factor at most 1/2: short chains
		ht.grow(t)
	}
	return old
}

// renew publishes a new node for e, which is in the table, after e's value
// or expiry changed, and returns it. The new node keeps the old one's mark.
// It requires the shard's write lock.
func (ht *hashTable[K, V]) renew(e *entry[K, V]) *node[K, V] {
	b := ht.cur.Load().bucket(e.hash)
	old := e.node
	n := newNode(e, without(b.Load(), e))
	n.mark.Store(old.mark.Load())
	b.Store(n)
	return n
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
	return copyNode(head, without(head.next, e))
}

func (ht *hashTable[K, V]) grow(t *table[K, V]) {
	nt := newTable[K, V](2 * len(t.buckets))
	for i := range t.buckets {
		for n := t.buckets[i].Load(); n != nil; n = n.next {
			b := nt.bucket(n.hash)
			b.Store(copyNode(n, b.Load()))
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

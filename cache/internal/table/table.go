// Package table is the hash table of a cache shard: readers walk it
// without a lock, writers change it under the shard's lock.
//
// Chains are immutable — a writer publishes a new chain head rather than
// editing a node — so a reader always sees a consistent chain, old or new.
// Growing builds a new bucket array and publishes it in one atomic store.
// A node carries copies of its entry's key, value and expiry, so a lookup
// reads the bucket, the node and the key's bytes and never the entry,
// which the eviction policy writes under the lock: one pointer hop less on
// the read path, and no cache line shared with writers.
package table

import "sync/atomic"

// Node is one link of a chain: the readers' view of an entry E of the
// cache. Its fields other than Mark never change once it is published; a
// changed value or expiry is published as a new node ([Table.Replace]).
type Node[K comparable, V any, E any] struct {
	Hash   uint64
	Key    K
	Value  V
	Expire int64 // UnixNano; 0 = never
	Entry  *E
	next   *Node[K, V, E]
	// Mark records reads for the eviction policy without a lock: the hits
	// since the policy last looked (see Touch) or the epoch of the last
	// read (see Stamp).
	Mark atomic.Uint32
}

// Touch records a read of n: it counts the hit in the node, which the
// lookup has just read, up to limit. Once the count is at the limit a read
// writes nothing, so cores reading the same hot key share its cache line
// instead of passing it back and forth. Two readers racing may both store
// the same count, losing a hit: the count only guides eviction, and the
// policies tolerate that loss.
func (n *Node[K, V, E]) Touch(limit uint32) {
	if h := n.Mark.Load(); h < limit {
		n.Mark.Store(h + 1)
	}
}

// Stamp records a read of n in epoch ep. Only the first read in an epoch
// writes.
func (n *Node[K, V, E]) Stamp(ep uint32) {
	if n.Mark.Load() != ep {
		n.Mark.Store(ep)
	}
}

type buckets[K comparable, V any, E any] struct {
	heads []atomic.Pointer[Node[K, V, E]]
	mask  uint64
}

func newBuckets[K comparable, V any, E any](n int) *buckets[K, V, E] {
	size := 8
	for size < n {
		size *= 2
	}
	return &buckets[K, V, E]{heads: make([]atomic.Pointer[Node[K, V, E]], size), mask: uint64(size - 1)}
}

// bucket uses the high half of the hash; the low bits choose the shard.
func (b *buckets[K, V, E]) bucket(h uint64) *atomic.Pointer[Node[K, V, E]] {
	return &b.heads[(h>>32)&b.mask]
}

// Table maps keys to nodes. Find is safe without the lock; every other
// method requires it. Create it with [Table.Init].
type Table[K comparable, V any, E any] struct {
	cur   atomic.Pointer[buckets[K, V, E]]
	count int
	// relink tells the owner of an entry which node is now its node in
	// the table: the writers copy nodes (see without and grow).
	relink func(e *E, n *Node[K, V, E])
}

// Init sizes t for about n nodes. relink is called, under the lock, each
// time a node for entry e is published, so that the cache can keep a
// pointer from e to its current node.
func (t *Table[K, V, E]) Init(n int, relink func(e *E, n *Node[K, V, E])) {
	t.cur.Store(newBuckets[K, V, E](2 * n))
	t.relink = relink
}

// Len returns the number of nodes.
func (t *Table[K, V, E]) Len() int { return t.count }

// Find returns the node for key, or nil. It is safe without the lock.
func (t *Table[K, V, E]) Find(h uint64, key K) *Node[K, V, E] {
	for n := t.cur.Load().bucket(h).Load(); n != nil; n = n.next {
		if n.Hash == h && n.Key == key {
			return n
		}
	}
	return nil
}

// Insert publishes n, whose key is not in the table.
func (t *Table[K, V, E]) Insert(n *Node[K, V, E]) {
	bs := t.cur.Load()
	b := bs.bucket(n.Hash)
	n.next = b.Load()
	b.Store(n)
	t.relink(n.Entry, n)
	t.count++
	if 2*t.count > len(bs.heads) { // load factor at most 1/2: short chains
		t.grow(bs)
	}
}

// Replace publishes n, a node for the same key and entry, in place of old.
func (t *Table[K, V, E]) Replace(old, n *Node[K, V, E]) {
	b := t.cur.Load().bucket(old.Hash)
	n.next = t.without(b.Load(), old)
	b.Store(n)
	t.relink(n.Entry, n)
}

// Delete removes n.
func (t *Table[K, V, E]) Delete(n *Node[K, V, E]) {
	b := t.cur.Load().bucket(n.Hash)
	b.Store(t.without(b.Load(), n))
	t.count--
}

// without returns the chain head with target left out, copying the nodes
// in front of it. Reads recorded in the marks of the nodes it copies by
// readers still walking the old chain are lost.
func (t *Table[K, V, E]) without(head, target *Node[K, V, E]) *Node[K, V, E] {
	if head == nil {
		return nil
	}
	if head == target {
		return head.next
	}
	return t.copyNode(head, t.without(head.next, target))
}

// copyNode returns a copy of n linked to next, keeping its mark, and makes
// it its entry's node.
func (t *Table[K, V, E]) copyNode(n, next *Node[K, V, E]) *Node[K, V, E] {
	c := &Node[K, V, E]{Hash: n.Hash, Key: n.Key, Value: n.Value, Expire: n.Expire, Entry: n.Entry, next: next}
	c.Mark.Store(n.Mark.Load())
	t.relink(c.Entry, c)
	return c
}

func (t *Table[K, V, E]) grow(bs *buckets[K, V, E]) {
	nb := newBuckets[K, V, E](2 * len(bs.heads))
	for i := range bs.heads {
		for n := bs.heads[i].Load(); n != nil; n = n.next {
			b := nb.bucket(n.Hash)
			b.Store(t.copyNode(n, b.Load()))
		}
	}
	t.cur.Store(nb)
}

// Each calls fn for every node. fn may not change the table (collect
// first, then delete).
func (t *Table[K, V, E]) Each(fn func(n *Node[K, V, E])) {
	bs := t.cur.Load()
	for i := range bs.heads {
		for n := bs.heads[i].Load(); n != nil; n = n.next {
			fn(n)
		}
	}
}

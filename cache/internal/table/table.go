// Package table is the hash table of a cache shard: readers walk it
// without a lock, writers change it under the shard's lock.
//
// A [Node] is the whole entry — the chain link, the key, the value, the
// expiry and the fields of the owner's eviction policy — in one
// allocation, as in Caffeine and otter, so an entry costs one object and a
// lookup reads one node per link of its chain. Nodes are never copied:
// rewriting a present key stores the new value and expiry in the node the
// readers already see ([Table.Store]), and removing a node unlinks it from
// its chain while leaving its own link intact, so a reader standing on it
// walks on. Growing relinks the nodes into a new bucket array; a reader
// that misses while a grow ran may have been led into another chain, so it
// walks again (see [Table.Find]).
//
// How the value is kept depends on its type, so that a rewrite allocates
// nothing where the hardware allows: a value of at most eight bytes without
// pointers (ints, floats, small structs) lives in the node as one atomic
// word; a value that is a single pointer (pointers, maps, channels,
// functions) lives in the node behind an atomic pointer store; any other
// value (strings, slices, interfaces, larger structs) is boxed, and a
// rewrite publishes a new box.
package table

import (
	"reflect"
	"sync/atomic"
	"unsafe"
)

// Node is one entry of the cache. Hash and Key never change once it is in
// a table; its value and expiry change only through [Table.Store], under
// the lock, and are read without it through [Table.Value] and
// [Node.Expire]. Mark is written by readers. Slot, Prev, Next and Weight
// belong to the owner's eviction policy and are guarded by its lock.
//
// A Node is the header of a larger allocation that also holds the value
// (see inline and boxed): create nodes with [Table.New] only.
type Node[K comparable, V any] struct {
	next   atomic.Pointer[Node[K, V]] // the chain
	Hash   uint64
	expire atomic.Int64 // UnixNano; 0 = never
	// Mark records reads for the eviction policy without a lock: the hits
	// since the policy last looked (see Touch) or the epoch of the last
	// read (see Stamp).
	Mark atomic.Uint32
	// Slot is where the policy filed the node: a list, an epoch or a heap
	// index, as the policy defines it.
	Slot uint32
	// Prev and Next link the node into the policy's lists.
	Prev, Next *Node[K, V]
	// Weight is the entry's weight, which the policy's sums count.
	Weight int64
	Key    K
}

// inline is the allocation of a node whose value is one word (see the
// package doc): the value sits right after the header, on an 8-byte
// boundary with eight bytes to the allocation's end (the header's size
// is a multiple of its 8-byte alignment, and so is the struct's).
type inline[K comparable, V any] struct {
	Node[K, V]
	value V
}

// boxed is the allocation of a node whose value is boxed.
type boxed[K comparable, V any] struct {
	Node[K, V]
	value atomic.Pointer[V]
}

// Expire returns n's expiry in UnixNano, 0 for none. It is safe without
// the lock.
func (n *Node[K, V]) Expire() int64 { return n.expire.Load() }

// Touch records a read of n: it counts the hit in the node, which the
// lookup has just read, up to limit. Once the count is at the limit a read
// writes nothing, so cores reading the same hot key share its cache line
// instead of passing it back and forth. Two readers racing may both store
// the same count, losing a hit: the count only guides eviction, and the
// policies tolerate that loss.
func (n *Node[K, V]) Touch(limit uint32) {
	if h := n.Mark.Load(); h < limit {
		n.Mark.Store(h + 1)
	}
}

// Stamp records a read of n in epoch ep. Only the first read in an epoch
// writes.
func (n *Node[K, V]) Stamp(ep uint32) {
	if n.Mark.Load() != ep {
		n.Mark.Store(ep)
	}
}

// layout says how a table keeps its values.
type layout uint8

const (
	boxedValue   layout = iota // behind an atomic pointer to a box
	wordValue                  // inline, as an atomic uint64
	pointerValue               // inline, as an atomic unsafe.Pointer
)

// layoutOf chooses the layout for values of type V.
func layoutOf[V any]() layout {
	t := reflect.TypeFor[V]()
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Chan, reflect.Func:
		return pointerValue
	}
	if t.Size() <= 8 && !hasPointers(t) {
		return wordValue
	}
	return boxedValue
}

// hasPointers reports whether values of type t hold pointers the garbage
// collector must see.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem()) // an empty array holds nothing: >= would only box such values, as safely
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	}
	return true
}

type buckets[K comparable, V any] struct {
	heads []atomic.Pointer[Node[K, V]]
	mask  uint64
}

func newBuckets[K comparable, V any](n int) *buckets[K, V] {
	size := 8
	for size < n {
		size *= 2
	}
	return &buckets[K, V]{heads: make([]atomic.Pointer[Node[K, V]], size), mask: uint64(size - 1)}
}

// bucket uses the high half of the hash; the low bits choose the shard.
func (b *buckets[K, V]) bucket(h uint64) *atomic.Pointer[Node[K, V]] {
	return &b.heads[(h>>32)&b.mask]
}

// Table maps keys to nodes. Find, Value and Node.Expire are safe without
// the lock; every other method requires it. Create it with [Table.Init].
type Table[K comparable, V any] struct {
	cur atomic.Pointer[buckets[K, V]]
	// grows counts the grows begun and ended: it is odd while one runs.
	grows  atomic.Uint32
	layout layout
	count  int
}

// Init sizes t for about n nodes.
func (t *Table[K, V]) Init(n int) {
	t.cur.Store(newBuckets[K, V](2 * n))
	t.layout = layoutOf[V]()
}

// Len returns the number of nodes.
func (t *Table[K, V]) Len() int { return t.count }

// New returns a node for key, not yet in the table, holding value until
// expire.
func (t *Table[K, V]) New(h uint64, key K, value V, expire int64) *Node[K, V] {
	var n *Node[K, V]
	if t.layout == boxedValue {
		b := &boxed[K, V]{}
		box := value // a copy local to this branch, so that only boxed values escape
		b.value.Store(&box)
		n = &b.Node
	} else {
		i := &inline[K, V]{value: value}
		n = &i.Node
	}
	n.Hash, n.Key = h, key
	n.expire.Store(expire)
	return n
}

// word is the inline value of n, seen as an atomic word.
func word[K comparable, V any](n *Node[K, V]) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&(*inline[K, V])(unsafe.Pointer(n)).value))
}

// pointer is the inline value of n, seen as an atomic pointer.
func pointer[K comparable, V any](n *Node[K, V]) *unsafe.Pointer {
	return (*unsafe.Pointer)(unsafe.Pointer(&(*inline[K, V])(unsafe.Pointer(n)).value))
}

// Value returns n's value. It is safe without the lock.
func (t *Table[K, V]) Value(n *Node[K, V]) V {
	switch t.layout {
	case wordValue:
		w := word(n).Load()
		return *(*V)(unsafe.Pointer(&w))
	case pointerValue:
		p := atomic.LoadPointer(pointer(n))
		return *(*V)(unsafe.Pointer(&p))
	}
	return *(*boxed[K, V])(unsafe.Pointer(n)).value.Load()
}

// Store rewrites n's value and expiry in place. A reader racing with it
// sees the old value, the new value under the old expiry, or the new value
// under the new expiry — never the old value under the new expiry, as the
// value is stored first.
func (t *Table[K, V]) Store(n *Node[K, V], value V, expire int64) {
	switch t.layout {
	case wordValue:
		var w uint64
		*(*V)(unsafe.Pointer(&w)) = value
		word(n).Store(w)
	case pointerValue:
		atomic.StorePointer(pointer(n), *(*unsafe.Pointer)(unsafe.Pointer(&value)))
	default:
		box := value // a copy local to this branch, so that only boxed values escape
		(*boxed[K, V])(unsafe.Pointer(n)).value.Store(&box)
	}
	// An unchanged expiry is not stored again: the store would take the
	// line from every core reading the node, for nothing.
	if n.expire.Load() != expire {
		n.expire.Store(expire)
	}
}

// Find returns the node for key, or nil. It is safe without the lock.
func (t *Table[K, V]) Find(h uint64, key K) *Node[K, V] {
	for {
		g := t.grows.Load()
		for n := t.cur.Load().bucket(h).Load(); n != nil; n = n.next.Load() {
			if n.Hash == h && n.Key == key {
				return n
			}
		}
		// A grow that ran during the walk may have moved a node of this
		// chain, and the walk with it, to another chain: only a miss with
		// no grow is a miss.
		if g&1 == 0 && t.grows.Load() == g {
			return nil
		}
	}
}

// Insert publishes n, whose key is not in the table.
func (t *Table[K, V]) Insert(n *Node[K, V]) {
	bs := t.cur.Load()
	b := bs.bucket(n.Hash)
	n.next.Store(b.Load())
	b.Store(n)
	t.count++
	if 2*t.count > len(bs.heads) { // load factor at most 1/2: short chains
		t.grow(bs)
	}
}

// Delete removes n, which is in the table. n keeps its link, so a reader
// standing on it walks on to the rest of its chain.
func (t *Table[K, V]) Delete(n *Node[K, V]) {
	link := t.cur.Load().bucket(n.Hash)
	for p := link.Load(); p != n; p = link.Load() {
		link = &p.next
	}
	link.Store(n.next.Load())
	t.count--
}

// grow moves every node into a bucket array twice as large. A node's new
// link points only to nodes moved before it, and a node not yet moved links
// only to nodes not yet moved, so a reader walking meanwhile meets no cycle
// and reaches the end of a chain.
func (t *Table[K, V]) grow(bs *buckets[K, V]) {
	nb := newBuckets[K, V](2 * len(bs.heads))
	t.grows.Add(1)
	for i := range bs.heads {
		for n := bs.heads[i].Load(); n != nil; {
			next := n.next.Load()
			b := nb.bucket(n.Hash)
			n.next.Store(b.Load())
			b.Store(n)
			n = next
		}
	}
	t.cur.Store(nb)
	t.grows.Add(1)
}

// Each calls fn for every node. fn may not change the table (collect
// first, then delete).
func (t *Table[K, V]) Each(fn func(n *Node[K, V])) {
	bs := t.cur.Load()
	for i := range bs.heads {
		for n := bs.heads[i].Load(); n != nil; n = n.next.Load() {
			fn(n)
		}
	}
}

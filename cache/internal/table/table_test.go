package table

import (
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func hash(k int) uint64 { return uint64(k) * 0x9e3779b97f4a7c15 }

// Through inserts, growth, rewrites and deletions, every key is found with
// its latest value and expiry, each rewrite keeps the node, and Len and
// Each count what is left.
func TestTable(t *testing.T) {
	var tab Table[int, string]
	tab.Init(4)
	const n = 1000
	nodes := make([]*Node[int, string], n)
	for i := range n {
		nodes[i] = tab.New(hash(i), i, "a", 0)
		tab.Insert(nodes[i])
	}
	for i := 0; i < n; i += 3 {
		tab.Store(tab.Find(hash(i), i), "b", int64(i))
	}
	for i := 1; i < n; i += 3 {
		tab.Delete(nodes[i])
	}
	if got, want := tab.Len(), n-(n+1)/3; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
	for i := range n {
		nd := tab.Find(hash(i), i)
		switch {
		case i%3 == 1:
			if nd != nil {
				t.Fatalf("deleted key %d found", i)
			}
		case nd != nodes[i]:
			t.Fatalf("key %d: found %p, want its node %p", i, nd, nodes[i])
		case i%3 == 0 && (tab.Value(nd) != "b" || nd.Expire() != int64(i)):
			t.Fatalf("key %d = %q until %d, want \"b\" until %d", i, tab.Value(nd), nd.Expire(), i)
		case i%3 == 2 && (tab.Value(nd) != "a" || nd.Expire() != 0):
			t.Fatalf("key %d = %q until %d, want \"a\" until 0", i, tab.Value(nd), nd.Expire())
		}
	}
	seen := map[int]bool{}
	tab.Each(func(nd *Node[int, string]) { seen[nd.Key] = true })
	if len(seen) != tab.Len() {
		t.Fatalf("Each saw %d keys, Len is %d", len(seen), tab.Len())
	}
	if !seen[0] || !seen[2] || seen[1] {
		t.Fatalf("Each saw keys 0, 1, 2: %v, %v, %v; want true, false, true", seen[0], seen[1], seen[2])
	}
}

// Nodes whose hashes share a bucket form one chain: deleting its head, a
// middle node and its tail leaves every other node found, and a reader
// standing on a deleted node walks on to the rest of the chain.
func TestTableChain(t *testing.T) {
	var tab Table[int, int]
	tab.Init(16) // no grow, which would reorder the chain
	const n = 6
	nodes := make([]*Node[int, int], n)
	for i := range n {
		nodes[i] = tab.New(7<<32, i, 10*i, 0) // one bucket, one hash
		tab.Insert(nodes[i])
	}
	// The chain is 5 4 3 2 1 0, newest first.
	for _, i := range []int{5, 2, 0} {
		tab.Delete(nodes[i])
	}
	for i := range n {
		nd := tab.Find(7<<32, i)
		if deleted := i == 5 || i == 2 || i == 0; deleted != (nd == nil) {
			t.Fatalf("key %d: found %v, deleted %v", i, nd != nil, deleted)
		}
		if nd != nil && tab.Value(nd) != 10*i {
			t.Fatalf("key %d = %d, want %d", i, tab.Value(nd), 10*i)
		}
	}
	var walked []int
	for nd := nodes[2].next.Load(); nd != nil; nd = nd.next.Load() {
		walked = append(walked, nd.Key)
	}
	if len(walked) != 1 || walked[0] != 1 {
		t.Fatalf("from deleted node 2 a reader walks %v, want [1]", walked)
	}
	if tab.Len() != 3 {
		t.Fatalf("Len = %d, want 3", tab.Len())
	}
}

// Readers never miss a present key, however the table grows and changes
// while they walk it.
func TestTableReadersDuringGrowth(t *testing.T) {
	var tab Table[int, int]
	tab.Init(1)
	const stable = 64
	for i := range stable {
		tab.Insert(tab.New(hash(i), i, i, 0))
	}
	var mu sync.Mutex // the writers' lock
	var done atomic.Bool
	var misses atomic.Int64
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() {
			for i := r; !done.Load(); i++ {
				k := i % stable
				nd := tab.Find(hash(k), k)
				if nd == nil || tab.Value(nd) != k {
					misses.Add(1)
				}
			}
		})
	}
	for i := stable; i < stable+20_000; i++ {
		mu.Lock()
		nd := tab.New(hash(i), i, i, 0)
		tab.Insert(nd)
		if i%2 == 0 {
			tab.Delete(nd)
		}
		mu.Unlock()
	}
	done.Store(true)
	wg.Wait()
	if m := misses.Load(); m != 0 {
		t.Fatalf("readers missed present keys %d times", m)
	}
	if got, want := tab.Len(), stable+10_000; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
}

type small struct{ a, b int16 }
type pair struct{ a, b int64 }
type withPointer struct {
	n int32
	p *int
}

// valueRoundTrip checks that a node keeps v and, after a rewrite, w, and
// that a rewrite allocates as many objects as the layout needs.
func valueRoundTrip[V comparable](t *testing.T, name string, v, w V, allocs float64) {
	t.Helper()
	var tab Table[string, V]
	tab.Init(1)
	nd := tab.New(1, "k", v, 5)
	tab.Insert(nd)
	if got := tab.Value(nd); got != v {
		t.Fatalf("%s: value %v, want %v", name, got, v)
	}
	tab.Store(nd, w, 9)
	if got := tab.Value(tab.Find(1, "k")); got != w || nd.Expire() != 9 {
		t.Fatalf("%s: after a rewrite, value %v until %d, want %v until 9", name, got, nd.Expire(), w)
	}
	if got := testing.AllocsPerRun(100, func() { tab.Store(nd, v, 0) }); got != allocs {
		t.Fatalf("%s: a rewrite allocates %v objects, want %v", name, got, allocs)
	}
	if got := tab.Value(nd); got != v {
		t.Fatalf("%s: value %v after rewrites, want %v", name, got, v)
	}
}

// Every kind of value survives a rewrite; a word without pointers and a
// single pointer are rewritten in place, anything else through a new box.
func TestValueLayouts(t *testing.T) {
	x, y := 1, 2
	ch1, ch2 := make(chan int), make(chan int)
	valueRoundTrip(t, "int", 7, -8, 0)
	valueRoundTrip(t, "float64", 1.5, -2.25, 0)
	valueRoundTrip(t, "bool", true, false, 0)
	valueRoundTrip(t, "int8", int8(-3), int8(4), 0)
	valueRoundTrip(t, "small struct", small{-1, 2}, small{3, -4}, 0)
	valueRoundTrip(t, "[2]int32", [2]int32{-1, 2}, [2]int32{3, -4}, 0)
	valueRoundTrip(t, "empty struct", struct{}{}, struct{}{}, 0)
	valueRoundTrip(t, "pointer", &x, &y, 0)
	valueRoundTrip(t, "chan", ch1, ch2, 0)
	valueRoundTrip(t, "unsafe.Pointer", unsafe.Pointer(&x), unsafe.Pointer(&y), 0)
	valueRoundTrip(t, "string", "hello", "world", 1)
	valueRoundTrip(t, "pair", pair{1, -2}, pair{-3, 4}, 1)
	valueRoundTrip(t, "struct with a pointer", withPointer{1, &x}, withPointer{2, &y}, 1)
	valueRoundTrip(t, "[1]*int", [1]*int{&x}, [1]*int{&y}, 1)
	valueRoundTrip(t, "any", any(1), any("two"), 1)
}

// Maps and functions are single pointers too: rewritten in place.
func TestValueLayoutsMapFunc(t *testing.T) {
	var tm Table[int, map[string]int]
	tm.Init(1)
	nd := tm.New(1, 1, map[string]int{"a": 1}, 0)
	tm.Insert(nd)
	tm.Store(nd, map[string]int{"b": 2}, 0)
	if got := tm.Value(nd); len(got) != 1 || got["b"] != 2 {
		t.Fatalf("map value %v, want map[b:2]", got)
	}
	if a := testing.AllocsPerRun(100, func() { tm.Store(nd, nil, 0) }); a != 0 {
		t.Fatalf("a map rewrite allocates %v objects", a)
	}
	var tf Table[int, func() int]
	tf.Init(1)
	nf := tf.New(1, 1, func() int { return 1 }, 0)
	tf.Insert(nf)
	tf.Store(nf, func() int { return 2 }, 0)
	if got := tf.Value(nf)(); got != 2 {
		t.Fatalf("func value returns %d, want 2", got)
	}
}

// A string-keyed node with an int value is one allocation of 80 bytes.
func TestNodeSize(t *testing.T) {
	if got := unsafe.Sizeof(inline[string, int]{}); got > 80 {
		t.Fatalf("node of string key and int value: %d bytes, want at most 80", got)
	}
	var tab Table[string, int]
	tab.Init(1)
	if got := testing.AllocsPerRun(100, func() { tab.New(1, "k", 1, 0) }); got != 1 {
		t.Fatalf("New allocates %v objects, want 1", got)
	}
}

// A node's mark saturates at the limit (Touch) and records the epoch of
// the last read (Stamp).
func TestMarks(t *testing.T) {
	var n Node[int, string]
	for range 20 {
		n.Touch(15)
	}
	if got := n.Mark.Load(); got != 15 {
		t.Fatalf("Touch: mark %d, want 15", got)
	}
	n.Stamp(42)
	if got := n.Mark.Load(); got != 42 {
		t.Fatalf("Stamp: mark %d, want 42", got)
	}
}

// A bucket array is the smallest power of two of at least eight heads
// that holds n: the table's memory per entry depends on it.
func TestNewBucketsSize(t *testing.T) {
	for n, want := range map[int]int{0: 8, 1: 8, 8: 8, 9: 16, 16: 16, 17: 32, 1000: 1024} {
		b := newBuckets[int, int](n)
		if len(b.heads) != want || b.mask != uint64(want-1) {
			t.Errorf("newBuckets(%d): %d heads, mask %d; want %d", n, len(b.heads), b.mask, want)
		}
	}
}

// The table doubles its buckets once it holds more than half as many
// nodes as buckets, and not before: chains stay short and memory per node
// bounded.
func TestTableGrowsAtHalfLoad(t *testing.T) {
	var tab Table[int, int]
	tab.Init(4) // 8 buckets
	for i := 1; i <= 40; i++ {
		tab.Insert(tab.New(hash(i), i, i, 0))
		want := 8
		for 2*i > want {
			want *= 2
		}
		if got := len(tab.cur.Load().heads); got != want {
			t.Fatalf("%d nodes: %d buckets, want %d", i, got, want)
		}
	}
}

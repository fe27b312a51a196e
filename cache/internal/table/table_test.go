package table

import "testing"

type entry struct {
	key  int
	node *Node[int, string, entry]
}

func relink(e *entry, n *Node[int, string, entry]) { e.node = n }

func hash(k int) uint64 { return uint64(k) * 0x9e3779b97f4a7c15 }

// Through inserts, growth, replacements and deletions, every key is found
// with its latest value, and each entry points at the node the table
// publishes for it.
func TestTable(t *testing.T) {
	var tab Table[int, string, entry]
	tab.Init(4, relink)
	const n = 1000
	es := make([]*entry, n)
	for i := range n {
		es[i] = &entry{key: i}
		tab.Insert(&Node[int, string, entry]{Hash: hash(i), Key: i, Value: "a", Entry: es[i]})
	}
	for i := 0; i < n; i += 3 {
		old := tab.Find(hash(i), i)
		nn := &Node[int, string, entry]{Hash: hash(i), Key: i, Value: "b", Entry: es[i]}
		nn.Mark.Store(old.Mark.Load())
		tab.Replace(old, nn)
	}
	for i := 1; i < n; i += 3 {
		tab.Delete(es[i].node)
	}
	if got, want := tab.Len(), n-len(es)/3; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
	for i := range n {
		nd := tab.Find(hash(i), i)
		switch {
		case i%3 == 1:
			if nd != nil {
				t.Fatalf("deleted key %d found", i)
			}
		case nd == nil:
			t.Fatalf("key %d lost", i)
		case nd != es[i].node:
			t.Fatalf("key %d: the entry points at a stale node", i)
		case i%3 == 0 && nd.Value != "b", i%3 == 2 && nd.Value != "a":
			t.Fatalf("key %d = %q", i, nd.Value)
		}
	}
	seen := 0
	tab.Each(func(*Node[int, string, entry]) { seen++ })
	if seen != tab.Len() {
		t.Fatalf("Each saw %d nodes, Len is %d", seen, tab.Len())
	}
}

// A node's mark saturates at the limit (Touch) and records the epoch of
// the last read (Stamp).
func TestMarks(t *testing.T) {
	var n Node[int, string, entry]
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

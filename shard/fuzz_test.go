package shard

import (
	"errors"
	"strings"
	"testing"
)

// FuzzPlacement checks the placement invariants on arbitrary shard sets and
// keys: construction either fails with ErrInvalidConfig or succeeds, and
// then every key lands on a valid shard, deterministically, and on the same
// named shard when the nodes are given in reverse order.
func FuzzPlacement(f *testing.F) {
	f.Add("a,b,c", 1.0, "user:1")
	f.Add("a,a", 2.0, "")
	f.Add("x", -1.0, "k")
	f.Add(",b", 0.5, "\xff")
	f.Add("s1,s2,s3,s4,s5,s6,s7", 1e-9, "ключ")
	f.Fuzz(func(t *testing.T, names string, weight float64, key string) {
		parts := strings.Split(names, ",")
		if len(parts) > 64 {
			parts = parts[:64]
		}
		nodes := make([]Node, len(parts))
		for i, p := range parts {
			nodes[i] = Node{Name: p, Weight: 1}
		}
		nodes[0].Weight = weight
		reversed := make([]Node, len(nodes))
		for i, n := range nodes {
			reversed[len(nodes)-1-i] = n
		}
		for _, a := range algorithms() {
			p, err := a.build(nodes)
			if err != nil {
				if !isConfigErr(err) {
					t.Fatalf("%s: error %v does not wrap ErrInvalidConfig", a.name, err)
				}
				continue
			}
			i := p.Locate(key)
			if i < 0 || i >= len(nodes) || i != p.Locate(key) {
				t.Fatalf("%s: key %q → %d of %d shards", a.name, key, i, len(nodes))
			}
			if !a.named {
				continue
			}
			q, err := a.build(reversed)
			if err != nil {
				t.Fatalf("%s: reversed nodes fail: %v", a.name, err)
			}
			if nodes[i].Name != reversed[q.Locate(key)].Name {
				t.Fatalf("%s: placement depends on node order for %q", a.name, key)
			}
		}
		if r, err := NewRing(nodes, RingOptions{VirtualNodes: 3}); err == nil {
			owned := make([]bool, len(nodes))
			for _, o := range r.owners {
				owned[o] = true
			}
			for i, ok := range owned {
				if !ok {
					t.Fatalf("shard %d (weight %v) owns no ring point", i, nodes[i].Weight)
				}
			}
		}
	})
}

func isConfigErr(err error) bool { return errors.Is(err, ErrInvalidConfig) }

// FuzzRange checks that range tables built from arbitrary split points
// either fail with ErrInvalidRange or place every key inside its range,
// and that Split keeps every other key where it was.
func FuzzRange(f *testing.F) {
	f.Add("g,p", "hello", "k")
	f.Add("p,g", "a", "b")
	f.Add("g,g", "g", "h")
	f.Add(",x", "", "y")
	f.Fuzz(func(t *testing.T, splits, key, at string) {
		cuts := strings.Split(splits, ",")
		if len(cuts) > 32 {
			cuts = cuts[:32]
		}
		nodes := makeNodes(len(cuts) + 2)
		r, err := NewRangeSplits(nodes[:len(cuts)+1], cuts)
		if err != nil {
			if !isConfigErr(err) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		i := r.Locate(key)
		if i < 0 {
			t.Fatalf("key %q outside a covering range table", key)
		}
		s := r.spans[r.find(key)]
		if key < s.Start || (s.End != "" && key >= s.End) || s.Shard != nodes[i].Name {
			t.Fatalf("key %q placed in %+v", key, s)
		}
		split, err := r.Split(at, nodes[len(nodes)-1].Name)
		if err != nil {
			return
		}
		want := nodes[i].Name
		if key >= at && r.find(key) == r.find(at) {
			want = nodes[len(nodes)-1].Name
		}
		if got := split.Nodes()[split.Locate(key)].Name; got != want {
			t.Fatalf("after Split(%q) key %q is on %s, want %s", at, key, got, want)
		}
		for _, m := range PlanRanges(r, split) {
			if m.To != nodes[len(nodes)-1].Name {
				t.Fatalf("split plan moves %v", m)
			}
		}
	})
}

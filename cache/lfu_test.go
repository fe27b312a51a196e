package cache

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// lfuModel is LFU-DA as defined, without groups: each entry's filed
// priority, the time it was filed, and its hits since; the victim is the
// entry first by (priority, time filed) once the candidates' hits are
// folded in.
type lfuModel struct {
	prio, filed map[int]int64
	hits        map[int]uint32
	age, tick   int64
}

func (m *lfuModel) add(k int) {
	m.tick++
	m.prio[k], m.filed[k], m.hits[k] = m.age+1, m.tick, 0
}

func (m *lfuModel) first() int {
	best := -1
	for k, p := range m.prio {
		if best < 0 || p < m.prio[best] || p == m.prio[best] && m.filed[k] < m.filed[best] {
			best = k
		}
	}
	return best
}

func (m *lfuModel) victim() int {
	for range len(m.prio) {
		k := m.first()
		if m.hits[k] == 0 {
			break
		}
		m.tick++
		m.prio[k] += int64(m.hits[k])
		m.filed[k], m.hits[k] = m.tick, 0
	}
	k := m.first()
	m.age = max(m.age, m.prio[k])
	return k
}

// The groups choose exactly the victim the definition does — lowest
// priority, then least recently counted — under random insertions, hits
// (saturating as Get's do), removals and evictions; and the groups stay
// in priority order, non-empty, each holding the entries that name it.
func TestLFUPolicyMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	p := newLFU[int, int]()
	m := &lfuModel{prio: map[int]int64{}, filed: map[int]int64{}, hits: map[int]uint32{}}
	nodes := map[int]*node[int, int]{}
	check := func(op int) {
		t.Helper()
		n := 0
		last := int64(-1 << 62)
		for g := p.groups[0].next; g != 0; g = p.groups[g].next {
			grp := p.groups[g]
			require.Greater(t, grp.prio, last, "op %d: group %d out of order", op, g)
			require.Positive(t, grp.list.len, "op %d: empty group %d still linked", op, g)
			for e := grp.list.head; e != nil; e = e.Next {
				require.Equal(t, g, e.Slot, "op %d: key %d", op, e.Key)
				n++
			}
			last = grp.prio
		}
		require.Equal(t, len(nodes), n, "op %d", op)
		require.Equal(t, len(nodes), p.len, "op %d", op)
	}
	var live []int // the resident keys, to pick from with rng
	pick := func() (int, *node[int, int]) {
		k := live[rng.IntN(len(live))]
		return k, nodes[k]
	}
	drop := func(k int) {
		delete(nodes, k)
		delete(m.prio, k)
		for i, l := range live {
			if l == k {
				live[i] = live[len(live)-1]
				live = live[:len(live)-1]
				break
			}
		}
	}
	for op := range 20000 {
		switch r := rng.IntN(10); {
		case len(live) == 0 || r < 3 && len(live) < 64:
			k := op
			e := &node[int, int]{Key: k, Weight: 1}
			nodes[k] = e
			live = append(live, k)
			p.add(e)
			m.add(k)
		case r < 8: // a hit on a resident key, counted as Get counts it
			k, e := pick()
			e.Touch(lfuHitLimit)
			m.hits[k] = min(m.hits[k]+1, lfuHitLimit)
		case r < 9: // a deletion
			k, e := pick()
			p.remove(e)
			drop(k)
		default: // an eviction
			v := p.victim()
			want := m.victim()
			require.Equal(t, want, v.Key, "op %d: victim", op)
			p.remove(v)
			drop(want)
		}
		check(op)
	}
	require.Less(t, len(p.groups), 64, "groups are reused, not leaked")
}

package cache

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/cache/internal/table"
)

// The TTL policy's victim is the entry first by (expiry, last write), with
// no expiry after every expiry, under random insertions, rewrites (which
// may add, change or drop the TTL), deletions and evictions.
func TestTTLPolicyMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var tab table.Table[int, int]
	tab.Init(8)
	var p ttlPolicy[int, int]
	nodes := map[int]*node[int, int]{}
	order := map[int][2]int64{} // the model: key -> (expiry or MaxInt64, write)
	var live []int
	write := int64(0)
	expiry := func() int64 {
		if rng.IntN(3) == 0 {
			return 0
		}
		return 1 + rng.Int64N(20)
	}
	file := func(k int, exp int64) {
		write++
		if exp == 0 {
			exp = math.MaxInt64
		}
		order[k] = [2]int64{exp, write}
	}
	pick := func() (int, int) {
		i := rng.IntN(len(live))
		return i, live[i]
	}
	drop := func(i int) {
		delete(nodes, live[i])
		delete(order, live[i])
		live[i] = live[len(live)-1]
		live = live[:len(live)-1]
	}
	for op := range 20000 {
		switch r := rng.IntN(10); {
		case len(live) == 0 || r < 4 && len(live) < 64:
			k, exp := op, expiry()
			e := tab.New(uint64(k), k, k, exp)
			nodes[k] = e
			live = append(live, k)
			p.add(e)
			file(k, exp)
		case r < 7: // a rewrite
			_, k := pick()
			exp := expiry()
			tab.Store(nodes[k], op, exp)
			p.update(nodes[k])
			file(k, exp)
		case r < 8: // a deletion
			i, k := pick()
			p.remove(nodes[k])
			drop(i)
		default: // an eviction
			want := -1
			for k, o := range order {
				if w := order[want]; want < 0 || o[0] < w[0] || o[0] == w[0] && o[1] < w[1] {
					want = k
				}
			}
			v := p.victim()
			require.Equal(t, want, v.Key, "op %d: victim", op)
			p.remove(v)
			for i, k := range live {
				if k == want {
					drop(i)
					break
				}
			}
		}
		require.Equal(t, len(live), len(p.h)+p.never.len, "op %d: entries filed", op)
	}
}

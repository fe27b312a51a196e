package replica

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomHistory plays writes from random contexts on three nodes and
// returns what three replicas hold when each has seen a random subset of
// the writes.
func randomHistory(seed uint64, lww bool) [3]Record {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e37))
	nodes := []string{"a", "b", "c"}
	var all Record
	var reps [3]Record
	for i := range 2 + rng.IntN(8) {
		node := nodes[rng.IntN(3)]
		// The writer read a random replica (or nothing: a blind write).
		var past VersionVector
		if rng.IntN(4) > 0 {
			past = reps[rng.IntN(3)].Clock
		}
		counter := max(all.Clock[node], past[node]) + 1
		w := Record{Siblings: []Sibling{{Value: fmt.Appendf(nil, "w%d", i), Dot: Dot{node, counter}, Past: past, Time: rng.Int64N(100)}},
			Clock: past.Join(VersionVector{node: counter}), LWW: lww}
		all = merge(all, w)
		for r := range reps {
			if rng.IntN(2) == 0 {
				reps[r] = merge(reps[r], w)
			}
		}
	}
	return reps
}

// TestMerge_ConvergesInAnyOrder checks the property replication relies on:
// merge is commutative, associative and idempotent, so replicas that
// exchange records in any order end equal.
func TestMerge_ConvergesInAnyOrder(t *testing.T) {
	for seed := range uint64(500) {
		for _, lww := range []bool{false, true} {
			r := randomHistory(seed, lww)
			ab, ba := merge(r[0], r[1]), merge(r[1], r[0])
			require.True(t, ab.equal(ba), "commutative, seed %d", seed)
			require.True(t, merge(ab, r[2]).equal(merge(r[0], merge(r[1], r[2]))), "associative, seed %d", seed)
			require.True(t, merge(ab, ab).equal(ab), "idempotent, seed %d", seed)
			require.NoError(t, ab.validate(DefaultMaxValueSize))
			if lww {
				require.LessOrEqual(t, len(ab.Siblings), 1)
			}
		}
	}
}

func FuzzMerge(f *testing.F) {
	f.Add(uint64(1), false)
	f.Add(uint64(7), true)
	f.Fuzz(func(t *testing.T, seed uint64, lww bool) {
		r := randomHistory(seed, lww)
		all := merge(merge(r[0], r[1]), r[2])
		if !merge(r[2], merge(r[1], r[0])).equal(all) {
			t.Fatalf("merge order changes the result, seed %d", seed)
		}
		// No sibling survives that another sibling's past contains.
		for _, s := range all.Siblings {
			for _, o := range all.Siblings {
				if s.Dot != o.Dot && s.Dot.in(o.Past) {
					t.Fatalf("sibling %v survives %v, which supersedes it", s.Dot, o.Dot)
				}
			}
		}
	})
}

func TestMerge_ContextResolvesOnlyWhatItSaw(t *testing.T) {
	x := Record{Siblings: []Sibling{{Value: []byte("x"), Dot: Dot{"a", 1}}}, Clock: VersionVector{"a": 1}}
	y := Record{Siblings: []Sibling{{Value: []byte("y"), Dot: Dot{"b", 1}}}, Clock: VersionVector{"b": 1}}
	xy := merge(x, y)
	assert.Equal(t, []string{"x", "y"}, strs(xy.values()), "concurrent: siblings")
	// z was written having read x only: it supersedes x, not y.
	z := Record{Siblings: []Sibling{{Value: []byte("z"), Dot: Dot{"a", 2}, Past: VersionVector{"a": 1}}}, Clock: VersionVector{"a": 2}}
	assert.ElementsMatch(t, []string{"y", "z"}, strs(merge(xy, z).values()))
	assert.Equal(t, VersionVector{"a": 2, "b": 1}, merge(xy, z).Clock)
}

func TestContext_Text(t *testing.T) {
	c := Context{"k", VersionVector{"n1": 3, "n2": 1}}
	b, err := c.MarshalText()
	require.NoError(t, err)
	var d Context
	require.NoError(t, d.UnmarshalText(b))
	assert.Equal(t, c, d)
	for _, bad := range []string{"!!", "W10", "eyJrIjoiayIsImMiOnsibjEiOjB9fQ"} { // [], {"k":"k","c":{"n1":0}}
		assert.ErrorIs(t, d.UnmarshalText([]byte(bad)), ErrInvalidContext, bad)
	}
}

func FuzzContext_UnmarshalText(f *testing.F) {
	b, _ := Context{"k", VersionVector{"n1": 3}}.MarshalText()
	f.Add(b)
	f.Add([]byte("e30"))
	f.Fuzz(func(t *testing.T, text []byte) {
		var c Context
		if err := c.UnmarshalText(text); err != nil {
			return
		}
		again, err := c.MarshalText()
		require.NoError(t, err)
		var d Context
		require.NoError(t, d.UnmarshalText(again))
		assert.Equal(t, c, d)
	})
}

func TestLevel(t *testing.T) {
	for _, tt := range []struct {
		opts    Options
		n, r, w int
	}{
		{Options{}, 3, 2, 2},
		{Options{Level: One}, 3, 1, 1},
		{Options{Level: All, N: 5}, 5, 5, 5},
		{Options{Level: Quorum, N: 5}, 5, 3, 3},
		{Options{Level: Quorum, N: 4}, 4, 3, 3},
		{Options{N: 3, R: 1, W: 3}, 3, 1, 3},
	} {
		n, r, w, err := tt.opts.quorum(3, 5)
		require.NoError(t, err)
		assert.Equal(t, [3]int{tt.n, tt.r, tt.w}, [3]int{n, r, w}, "%+v", tt.opts)
	}
	assert.Equal(t, "QUORUM", Quorum.String())
	assert.Equal(t, "Level(7)", Level(7).String())
}

func TestRecord_ValidateBoundsSiblings(t *testing.T) {
	var r Record
	r.Clock = VersionVector{}
	for i := range maxSiblings + 1 {
		node := fmt.Sprint("n", i)
		r.Siblings = append(r.Siblings, Sibling{Value: []byte("v"), Dot: Dot{node, 1}})
		r.Clock[node] = 1
	}
	require.ErrorIs(t, r.validate(1), ErrBadReply)
	r.Siblings = r.Siblings[:maxSiblings]
	require.NoError(t, r.validate(1), "exactly maxSiblings siblings")
	r.Siblings[0].Value = []byte("vv")
	require.ErrorIs(t, r.validate(1), ErrBadReply, "a value over maxValue")
	require.NoError(t, r.validate(2), "a value of exactly maxValue")
}

package shard

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// algorithm builds one placement over a shard set; every test below runs
// over all of them.
type algorithm struct {
	name     string
	build    func(nodes []Node) (Placement, error)
	weighted bool // honours weights
	named    bool // placement depends on names, not on positions
	// moveBound is the most keys a one-shard change may move, as a multiple
	// of the ideal 1/(n+1); 0 means no bound (modulo).
	moveBound float64
}

func algorithms() []algorithm {
	return []algorithm{
		{"modulo", func(n []Node) (Placement, error) { return NewModulo(n) }, false, false, 0},
		{"ring", func(n []Node) (Placement, error) { return NewRing(n, RingOptions{VirtualNodes: 1000}) }, true, true, 1.05},
		{"bounded", func(n []Node) (Placement, error) { return NewBounded(n, BoundedOptions{LoadFactor: 1.05}) }, true, true, 1.25},
		{"jump", func(n []Node) (Placement, error) { return NewJump(n) }, false, false, 1.05},
		{"rendezvous", func(n []Node) (Placement, error) { return NewRendezvous(n) }, true, true, 1.05},
		{"maglev", func(n []Node) (Placement, error) { return NewMaglev(n, MaglevOptions{}) }, true, true, 1.5},
	}
}

func makeNodes(n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{Name: fmt.Sprintf("shard-%03d", i), Weight: 1}
	}
	return nodes
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user:%d", i)
	}
	return out
}

// loads counts keys per shard.
func loads(p Placement, ks []string) []int {
	c := make([]int, len(p.Nodes()))
	for _, k := range ks {
		c[p.Locate(k)]++
	}
	return c
}

func maxOverMean(c []int, total int) float64 {
	return float64(slices.Max(c)) / (float64(total) / float64(len(c)))
}

func TestPlacement_BadInput(t *testing.T) {
	cases := []struct {
		name  string
		nodes []Node
		want  error
	}{
		{"zero shards", nil, ErrNoShards},
		{"duplicate", []Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}, {Name: "a", Weight: 1}}, ErrDuplicateShard},
		{"empty name", []Node{{Name: "", Weight: 1}}, ErrInvalidConfig},
		{"negative weight", []Node{{Name: "a", Weight: -1}}, ErrInvalidWeight},
		{"NaN weight", []Node{{Name: "a", Weight: math.NaN()}}, ErrInvalidWeight},
		{"Inf weight", []Node{{Name: "a", Weight: math.Inf(1)}}, ErrInvalidWeight},
		{"-Inf weight", []Node{{Name: "a", Weight: math.Inf(-1)}}, ErrInvalidWeight},
		{"zero weight", []Node{{Name: "a", Weight: 1}, {Name: "b"}}, ErrInvalidWeight},
	}
	for _, a := range algorithms() {
		for _, c := range cases {
			t.Run(a.name+"/"+c.name, func(t *testing.T) {
				p, err := a.build(c.nodes)
				require.Error(t, err)
				assert.Nil(t, p)
				assert.ErrorIs(t, err, c.want)
				assert.ErrorIs(t, err, ErrInvalidConfig)
				assert.Regexp(t, `^shard: `, err.Error())
			})
		}
		if !a.weighted {
			t.Run(a.name+"/weights unsupported", func(t *testing.T) {
				_, err := a.build([]Node{{Name: "a", Weight: 2}, {Name: "b", Weight: 1}})
				assert.ErrorIs(t, err, ErrInvalidWeight)
				assert.ErrorContains(t, err, `"a"`)
			})
		}
	}
}

func TestPlacement_EveryKeyLandsOnAShard(t *testing.T) {
	for _, a := range algorithms() {
		for _, n := range []int{1, 2, 7, 100} {
			t.Run(fmt.Sprintf("%s/n=%d", a.name, n), func(t *testing.T) {
				p, err := a.build(makeNodes(n))
				require.NoError(t, err)
				require.Len(t, p.Nodes(), n)
				for _, k := range append(keys(2000), "", "\x00", "ключ") {
					i := p.Locate(k)
					require.True(t, i >= 0 && i < n, "key %q → %d", k, i)
					require.Equal(t, i, p.Locate(k), "not deterministic for %q", k)
				}
			})
		}
	}
}

func TestPlacement_Balance(t *testing.T) {
	ks := keys(100_000)
	for _, a := range algorithms() {
		t.Run(a.name, func(t *testing.T) {
			p, err := a.build(makeNodes(10))
			require.NoError(t, err)
			c := loads(p, ks)
			assert.LessOrEqual(t, maxOverMean(c, len(ks)), 1.10, "loads %v", c)
		})
	}
}

// Adding one shard moves about the ideal 1/(n+1) of keys, and each moved
// key goes to the new shard (jump, ring, rendezvous), except for modulo,
// which moves nearly all.
func TestPlacement_MovementOnAdd(t *testing.T) {
	ks := keys(50_000)
	const n = 10
	for _, a := range algorithms() {
		t.Run(a.name, func(t *testing.T) {
			before, err := a.build(makeNodes(n))
			require.NoError(t, err)
			after, err := a.build(makeNodes(n + 1))
			require.NoError(t, err)
			moved := 0
			for _, k := range ks {
				if before.Locate(k) != after.Locate(k) {
					moved++
				}
			}
			ratio := float64(moved) / float64(len(ks)) / (1.0 / (n + 1))
			switch {
			case a.name == "modulo":
				assert.Greater(t, ratio, 8.0, "modulo moves almost everything")
			case a.moveBound > 0:
				assert.LessOrEqual(t, ratio, a.moveBound)
			}
		})
	}
}

// The same named shards in another order place every key on the same name.
func TestPlacement_IndependentOfInsertionOrder(t *testing.T) {
	for _, a := range algorithms() {
		if !a.named {
			continue // modulo and jump number shards by position by definition
		}
		t.Run(a.name, func(t *testing.T) {
			nodes := makeNodes(20)
			nodes[3].Weight = 2
			shuffled := slices.Clone(nodes)
			slices.Reverse(shuffled)
			shuffled[0], shuffled[7] = shuffled[7], shuffled[0]
			p1, err := a.build(nodes)
			require.NoError(t, err)
			p2, err := a.build(shuffled)
			require.NoError(t, err)
			for _, k := range keys(5000) {
				require.Equal(t, nodes[p1.Locate(k)].Name, shuffled[p2.Locate(k)].Name, "key %q", k)
			}
		})
	}
}

func TestPlacement_Weights(t *testing.T) {
	ks := keys(100_000)
	nodes := []Node{{Name: "small", Weight: 1}, {Name: "big", Weight: 3}, {Name: "tiny", Weight: 0.01}}
	for _, a := range algorithms() {
		if !a.weighted {
			continue
		}
		t.Run(a.name, func(t *testing.T) {
			p, err := a.build(nodes)
			require.NoError(t, err)
			c := loads(p, ks)
			share := func(i int) float64 { return float64(c[i]) / float64(len(ks)) }
			assert.InDelta(t, 1/4.01, share(0), 0.03, "small %v", c)
			assert.InDelta(t, 3/4.01, share(1), 0.03, "big %v", c)
			assert.Greater(t, c[2], 0, "a shard with a small weight still gets keys")
		})
	}
}

func TestPlacement_LocateDoesNotAllocate(t *testing.T) {
	for _, a := range algorithms() {
		p, err := a.build(makeNodes(50))
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(100, func() { _ = p.Locate("user:42") })
		assert.Zero(t, allocs, a.name)
	}
}

// Every constructor that takes a shard set rejects a weight that is not a
// finite number above zero, naming the shard and the value: a zero weight
// is not quietly taken as 1.
func TestConstructors_RejectNonPositiveWeights(t *testing.T) {
	constructors := map[string]func([]Node) error{
		"NewModulo": func(n []Node) error { _, err := NewModulo(n); return err },
		"NewRing":   func(n []Node) error { _, err := NewRing(n, RingOptions{}); return err },
		"NewBounded": func(n []Node) error {
			_, err := NewBounded(n, BoundedOptions{})
			return err
		},
		"NewBoundedLoads": func(n []Node) error {
			_, err := NewBoundedLoads(n, BoundedLoadsOptions{})
			return err
		},
		"NewJump":       func(n []Node) error { _, err := NewJump(n); return err },
		"NewRendezvous": func(n []Node) error { _, err := NewRendezvous(n); return err },
		"NewMaglev":     func(n []Node) error { _, err := NewMaglev(n, MaglevOptions{}); return err },
		"NewRange": func(n []Node) error {
			_, err := NewRange(n, []Span{{Shard: n[0].Name}})
			return err
		},
		"NewRangeSplits": func(n []Node) error { _, err := NewRangeSplits(n, []string{"m"}); return err },
		"NewDirectory": func(n []Node) error {
			_, err := NewDirectory(n, nil, DirectoryOptions{})
			return err
		},
		"NewCachedDirectory": func(n []Node) error {
			_, err := NewCachedDirectory(&flakySource{}, n, CachedDirectoryOptions{})
			return err
		},
	}
	for name, build := range constructors {
		for _, w := range []float64{0, math.Copysign(0, -1), -1, -1e-300, math.NaN(), math.Inf(1), math.Inf(-1)} {
			t.Run(fmt.Sprintf("%s/weight=%v", name, w), func(t *testing.T) {
				err := build([]Node{{Name: "ok", Weight: 1}, {Name: "bad-shard", Weight: w}})
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrInvalidWeight)
				assert.ErrorIs(t, err, ErrInvalidConfig)
				assert.ErrorContains(t, err, `"bad-shard"`, "the error names the shard")
				assert.ErrorContains(t, err, fmt.Sprint(w), "the error names the value")
			})
		}
		t.Run(name+"/weight=1", func(t *testing.T) {
			assert.NoError(t, build(NodesNamed("ok", "good")))
		})
	}
}

func TestNodesNamed(t *testing.T) {
	assert.Equal(t, []Node{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}}, NodesNamed("a", "b"))
	assert.Empty(t, NodesNamed())
	_, err := NewJump(NodesNamed())
	assert.ErrorIs(t, err, ErrNoShards)
}

func TestErrorsWrapBothSentinels(t *testing.T) {
	_, err := NewRing([]Node{{Name: "x", Weight: -3}}, RingOptions{})
	assert.True(t, errors.Is(err, ErrInvalidWeight) && errors.Is(err, ErrInvalidConfig))
	assert.ErrorContains(t, err, "-3")
}

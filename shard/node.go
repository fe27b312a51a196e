package shard

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Node is one shard (or backend) of a placement: a unique name and a
// relative weight.
//
// Every weight must be a finite number greater than zero: 1 for an
// unweighted shard ([NodesNamed] builds such nodes). Zero, negative, NaN
// and infinite weights are errors wrapping [ErrInvalidWeight] that name the
// shard and the value, and so are duplicate or empty names; no weight is
// silently replaced by a default. [Ring], [Bounded], [BoundedLoads],
// [Rendezvous] and [Maglev] honour weights; [Modulo], [Jump] and [Range]
// cannot and reject any weight other than 1; a [Directory] accepts a weight
// only as its fallback placement honours it.
//
// Placements return indexes into the slice of nodes given to their
// constructor; the names, not the positions, decide where keys go, so the
// same set of nodes in any order places every key on the same named node
// (except [Modulo] and [Jump], whose shards are numbered by position).
type Node struct {
	// Name identifies the shard; it is hashed to place the shard.
	Name string
	// Weight is the shard's share of keys relative to the others: a
	// finite number greater than zero, 1 for an unweighted shard.
	Weight float64
}

// NodesNamed returns one unweighted node (weight 1) per name, in order:
// the usual shard set of [Modulo], [Jump] and [Range].
func NodesNamed(names ...string) []Node {
	nodes := make([]Node, len(names))
	for i, n := range names {
		nodes[i] = Node{Name: n, Weight: 1}
	}
	return nodes
}

// nodeSet is a validated copy of a shard set.
type nodeSet struct {
	nodes   []Node    // as given
	weights []float64 // nodes[i].Weight, validated
	byName  []int     // input indexes sorted by name
	total   float64   // sum of weights
	index   map[string]int
}

// newNodeSet validates nodes and returns their normalised copy.
func newNodeSet(nodes []Node) (*nodeSet, error) {
	if len(nodes) == 0 {
		return nil, ErrNoShards
	}
	if len(nodes) > math.MaxInt32 {
		return nil, fmt.Errorf("%w: %d shards (at most %d)", ErrInvalidConfig, len(nodes), math.MaxInt32)
	}
	s := &nodeSet{
		nodes:   slices.Clone(nodes),
		weights: make([]float64, len(nodes)),
		byName:  make([]int, len(nodes)),
		index:   make(map[string]int, len(nodes)),
	}
	for i, n := range nodes {
		if n.Name == "" {
			return nil, fmt.Errorf("%w: shard %d has an empty name", ErrInvalidConfig, i)
		}
		if j, dup := s.index[n.Name]; dup {
			return nil, fmt.Errorf("%w: %q at positions %d and %d", ErrDuplicateShard, n.Name, j, i)
		}
		w := n.Weight
		if !(w > 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("%w: shard %q has weight %v (want a finite number > 0; 1 for an unweighted shard)", ErrInvalidWeight, n.Name, w)
		}
		s.index[n.Name] = i
		s.weights[i] = w
		s.byName[i] = i
		s.total += w
	}
	slices.SortFunc(s.byName, func(a, b int) int { return strings.Compare(nodes[a].Name, nodes[b].Name) })
	return s, nil
}

// requireUnweighted reports an error when a shard's weight is not 1, for
// placements that cannot honour weights; why says what decides a shard's
// share instead.
func (s *nodeSet) requireUnweighted(algo, why string) error {
	for i, w := range s.weights {
		if w != 1 {
			return fmt.Errorf("%w: %s placement is unweighted (%s), but shard %q has weight %v (want 1)", ErrInvalidWeight, algo, why, s.nodes[i].Name, w)
		}
	}
	return nil
}

// hashKey is the key hash every placement uses: xxHash64, no allocation.
func hashKey(key string) uint64 { return xxhash.Sum64String(key) }

// mix64 is the SplitMix64 finaliser: a fast bijective scrambler that turns
// related inputs (a node hash plus a counter) into independent-looking
// 64-bit values.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// fastRange maps a uniform 64-bit hash onto [0, n) with a multiply instead
// of a division (Lemire's reduction).
func fastRange(h uint64, n uint64) uint64 {
	hi, _ := bits.Mul64(h, n)
	return hi
}

// golden is 2^64 divided by the golden ratio, the SplitMix64 increment.
const golden = 0x9e3779b97f4a7c15

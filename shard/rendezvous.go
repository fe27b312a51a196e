package shard

import (
	"fmt"
	"math"
	"slices"
)

// Rendezvous is rendezvous or highest-random-weight hashing (Thaler and
// Ravishankar, 1996): every shard scores the key with a hash of (key,
// shard), and the highest score wins. Weighted shards use the logarithmic
// method (score = w / −ln u, Schindelhauer and Schomaker 2005), which gives
// each shard exactly its weight's share of keys.
//
// Pros: no memory beyond the shard list, optimal movement (only the keys of
// a removed shard move, and a new shard takes only its share), exact
// weights, any shard may leave, and the full ordering of shards per key
// gives replica placement for free. Cons: O(n) per lookup, so it suits tens
// to a few hundred shards, not thousands. Use it for replica sets, small
// clusters and weighted placement where exactness beats lookup speed.
//
// Shards are scored in name order and ties go to the smaller name, so the
// result does not depend on insertion order. Removal ([Rendezvous.Without])
// builds a new Rendezvous and reports bad input as an error. A Rendezvous is
// immutable and safe for concurrent use.
type Rendezvous struct {
	set      *nodeSet
	seeds    []uint64  // per shard in name order
	weights  []float64 // per shard in name order
	index    []int32   // input index per shard in name order
	weighted bool
}

// NewRendezvous returns rendezvous placement over nodes.
func NewRendezvous(nodes []Node) (*Rendezvous, error) {
	set, err := newNodeSet(nodes)
	if err != nil {
		return nil, err
	}
	r := &Rendezvous{set: set}
	for _, i := range set.byName {
		r.seeds = append(r.seeds, hashKey(nodes[i].Name))
		r.weights = append(r.weights, set.weights[i])
		r.index = append(r.index, int32(i))
		if set.weights[i] != set.weights[set.byName[0]] {
			r.weighted = true
		}
	}
	return r, nil
}

// Locate returns the index in the nodes given to [NewRendezvous] of the
// shard with the highest score for key. It does not allocate.
func (r *Rendezvous) Locate(key string) int {
	h := hashKey(key)
	best := 0
	if !r.weighted {
		// Equal weights: comparing the raw scores is the same order as
		// comparing w / −ln u, without a logarithm per shard.
		var top uint64
		for i, s := range r.seeds {
			if v := mix64(h ^ s); v > top || i == 0 {
				best, top = i, v
			}
		}
		return int(r.index[best])
	}
	top := math.Inf(-1)
	for i, s := range r.seeds {
		// u in (0, 1): 53 random bits plus a half, never 0 or 1.
		u := (float64(mix64(h^s)>>11) + 0.5) / (1 << 53)
		if v := r.weights[i] / -math.Log(u); v > top {
			best, top = i, v
		}
	}
	return int(r.index[best])
}

// Nodes returns a copy of the shard set in the order given to
// [NewRendezvous].
func (r *Rendezvous) Nodes() []Node { return slices.Clone(r.set.nodes) }

// Without returns a Rendezvous over the same shards minus the one named
// name: only that shard's keys move. Removing an unknown shard is an error
// wrapping [ErrUnknownShard], removing the last one an error wrapping
// [ErrNoShards]; neither panics.
func (r *Rendezvous) Without(name string) (*Rendezvous, error) {
	i, ok := r.set.index[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not a shard of this placement", ErrUnknownShard, name)
	}
	return NewRendezvous(slices.Delete(slices.Clone(r.set.nodes), i, i+1))
}

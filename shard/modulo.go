package shard

import "slices"

// Modulo is hash-mod-n placement: shard = hash(key) mod n, the guide's
// "modulo-based" hash sharding and the baseline the other algorithms beat.
//
// Pros: no memory, one division, perfectly even for a good hash. Cons:
// changing n moves almost every key (n/(n+1) of them when a shard is added,
// against the ideal 1/(n+1)), which is the guide's "difficult to add/remove
// shards"; no weights. Use it only when the shard count never changes, or
// behind a fixed number of logical shards (as Vitess keyspace IDs do) that
// are mapped to servers by another placement.
//
// A Modulo is immutable and safe for concurrent use.
type Modulo struct {
	set *nodeSet
	n   uint64
}

// NewModulo returns modulo placement over nodes. Modulo cannot honour
// weights: every weight must be 1 ([ErrInvalidWeight] otherwise).
func NewModulo(nodes []Node) (*Modulo, error) {
	set, err := newNodeSet(nodes)
	if err != nil {
		return nil, err
	}
	if err := set.requireUnweighted("modulo", "every shard takes 1/n of the keys"); err != nil {
		return nil, err
	}
	return &Modulo{set: set, n: uint64(len(nodes))}, nil
}

// Locate returns hash(key) mod n, an index into the nodes given to
// [NewModulo].
func (m *Modulo) Locate(key string) int { return int(hashKey(key) % m.n) }

// Nodes returns a copy of the shard set in the order given to [NewModulo].
func (m *Modulo) Nodes() []Node { return slices.Clone(m.set.nodes) }

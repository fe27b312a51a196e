package shard

import (
	"fmt"
	"math"
	"slices"
)

// DefaultLoadFactor is the capacity factor c = 1 + ε of [Bounded] and
// [BoundedLoads] when their LoadFactor option is zero: no shard above 1.25×
// its fair share. (HAProxy's hash-balance-factor expresses the same c as a
// percentage, such as 125.)
const DefaultLoadFactor = 1.25

// DefaultPartitions is the number of partitions when
// [BoundedOptions.Partitions] is zero: 65,536, enough for the bound to
// round up by less than 2% at 1,000 shards, in 256 KiB.
const DefaultPartitions = 1 << 16

// maxPartitions bounds the memory of one bounded-load table.
const maxPartitions = 1 << 24

// BoundedOptions configure [NewBounded]. The zero value is ready to use.
type BoundedOptions struct {
	// LoadFactor is c: no shard holds more than ⌈c · P · w / W⌉ of the P
	// partitions, where w is its weight and W the total. It must be ≥ 1.
	// Zero means [DefaultLoadFactor] (1.25).
	LoadFactor float64
	// Partitions is P, the number of fixed partitions keys hash into. Keep
	// it the same across membership changes: a key's partition depends only
	// on P, so changing P remaps almost every key. More partitions make the
	// bound tighter (⌈c·P/n⌉ rounds up less). Zero means
	// [DefaultPartitions]; it may be smaller than the number of shards
	// (then some shards own nothing).
	Partitions int
	// VirtualNodes configures the underlying ring, as in [RingOptions].
	VirtualNodes int
}

// Bounded is consistent hashing with bounded loads (Mirrokni, Thorup and
// Zadimoghaddam, 2016) applied to data placement: a ring where a shard
// that is full passes keys on to the next shard clockwise, so no shard
// holds more than c times its fair share.
//
// Keys are hashed into P fixed partitions (as buraksezer/consistent does),
// and the partitions, not individual keys, are assigned: each partition
// walks the ring from its own hash and takes the first shard below its
// capacity ⌈c·P·w/W⌉. Since the capacities add up to at least c·P ≥ P, a
// shard with room always exists: the construction cannot fail and cannot
// panic. Lookup is a hash and an array read.
//
// Pros: a hard bound on the busiest shard (max/mean ≤ c plus the noise of
// keys per partition) at the ring's low movement; O(1) lookup. Cons:
// movement grows as c falls toward 1 (overflowing partitions cascade), and
// the bound is on partitions, not on live request load ([BoundedLoads]
// bounds that). Use it to cap hot spots on caches and stores when the
// ring's variance is too large.
//
// A Bounded is immutable and safe for concurrent use.
type Bounded struct {
	set      *nodeSet
	table    []int32 // partition → input index
	capacity []int   // per input index
}

// NewBounded builds a bounded-load table over nodes.
func NewBounded(nodes []Node, opts BoundedOptions) (*Bounded, error) {
	ring, err := NewRing(nodes, RingOptions{VirtualNodes: opts.VirtualNodes})
	if err != nil {
		return nil, err
	}
	set := ring.set
	c := opts.LoadFactor
	if c == 0 {
		c = DefaultLoadFactor
	}
	if math.IsNaN(c) || math.IsInf(c, 0) || c < 1 {
		return nil, fmt.Errorf("%w: BoundedOptions.LoadFactor is %v (want ≥ 1; 0 means %v)", ErrInvalidConfig, opts.LoadFactor, DefaultLoadFactor)
	}
	p := opts.Partitions
	if p == 0 {
		p = DefaultPartitions
	}
	if p < 1 || p > maxPartitions {
		return nil, fmt.Errorf("%w: BoundedOptions.Partitions is %d (want 1 to %d; 0 means %d)", ErrInvalidConfig, opts.Partitions, maxPartitions, DefaultPartitions)
	}
	b := &Bounded{set: set, table: make([]int32, p), capacity: make([]int, len(nodes))}
	for i, w := range set.weights {
		b.capacity[i] = int(math.Ceil(c * float64(p) * w / set.total))
	}
	load := make([]int, len(nodes))
	for part := range p {
		k := ring.search(mix64(uint64(part) * golden))
		for tries := 0; ; tries++ {
			if tries == len(ring.hashes) {
				// Unreachable while capacities add up to ≥ P; kept so a
				// future change fails loudly instead of looping.
				return nil, fmt.Errorf("%w: no shard has room for partition %d of %d at load factor %v", ErrInvalidConfig, part, p, c)
			}
			owner := ring.owners[k]
			if load[owner] < b.capacity[owner] {
				load[owner]++
				b.table[part] = owner
				break
			}
			if k++; k == len(ring.hashes) {
				k = 0
			}
		}
	}
	return b, nil
}

// Locate returns the index in the nodes given to [NewBounded] of the shard
// that owns key's partition. It does not allocate.
func (b *Bounded) Locate(key string) int {
	return int(b.table[fastRange(hashKey(key), uint64(len(b.table)))])
}

// Nodes returns a copy of the shard set in the order given to [NewBounded].
func (b *Bounded) Nodes() []Node { return slices.Clone(b.set.nodes) }

// Partitions returns the number of partitions per shard, indexed like
// [Bounded.Nodes], and each shard's capacity.
func (b *Bounded) Partitions() (owned, capacity []int) {
	owned = make([]int, len(b.capacity))
	for _, o := range b.table {
		owned[o]++
	}
	return owned, slices.Clone(b.capacity)
}

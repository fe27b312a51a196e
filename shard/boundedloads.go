package shard

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

// ErrNotAcquired reports a [BoundedLoads.Release] of a shard that holds no
// acquired load.
var ErrNotAcquired = errors.New("shard: release without acquire")

// BoundedLoadsOptions configure [NewBoundedLoads]. The zero value is ready
// to use.
type BoundedLoadsOptions struct {
	// LoadFactor is c: no shard holds more than ⌈c · (m+1) · w / W⌉ of the
	// m loads in flight, counting the one being placed. It must be ≥ 1.
	// Zero means [DefaultLoadFactor] (1.25).
	LoadFactor float64
	// VirtualNodes configures the underlying ring, as in [RingOptions].
	VirtualNodes int
	// OnOverflow, if set, is called after an Acquire that skipped the
	// key's full ring owner, with the owner's and the chosen shard's
	// indexes, on the acquiring goroutine and outside the lock.
	OnOverflow func(key string, owner, chosen int)
}

// BoundedLoads is consistent hashing with bounded loads over live load —
// requests, connections, sessions in flight — as in the paper (Mirrokni,
// Thorup and Zadimoghaddam, 2016) and HAProxy's hash-balance-factor, which
// Vimeo reports cut its cache servers' bandwidth almost 8×: a key
// goes to its ring owner unless that shard already carries c times its
// fair share of the current load, in which case it goes to the next shard
// clockwise with room. [Bounded] is the static counterpart that places
// partitions of keys.
//
// Acquire never fails and never panics: the capacities add up to at least
// c·(m+1) > m, so some shard always has room. Keys stick to their shard as
// long as it is not overloaded, so caches behind it stay warm; when it is,
// only the overflow moves, and to a deterministic next shard.
//
// A BoundedLoads is safe for concurrent use.
type BoundedLoads struct {
	ring       *Ring
	c          float64
	onOverflow func(key string, owner, chosen int)

	mu         sync.Mutex
	load       []int64 // guarded by mu; per input index
	total      int64   // guarded by mu
	overflowed uint64  // guarded by mu
}

// NewBoundedLoads returns a bounded-load balancer over nodes.
func NewBoundedLoads(nodes []Node, opts BoundedLoadsOptions) (*BoundedLoads, error) {
	ring, err := NewRing(nodes, RingOptions{VirtualNodes: opts.VirtualNodes})
	if err != nil {
		return nil, err
	}
	c := opts.LoadFactor
	if c == 0 {
		c = DefaultLoadFactor
	}
	if math.IsNaN(c) || math.IsInf(c, 0) || c < 1 {
		return nil, fmt.Errorf("%w: BoundedLoadsOptions.LoadFactor is %v (want ≥ 1; 0 means %v)", ErrInvalidConfig, opts.LoadFactor, DefaultLoadFactor)
	}
	return &BoundedLoads{ring: ring, c: c, onOverflow: opts.OnOverflow, load: make([]int64, len(nodes))}, nil
}

// Acquire places one unit of load for key and returns its shard's index
// in the nodes given to [NewBoundedLoads]. Call [BoundedLoads.Release]
// with that index when the load ends. It does not allocate.
func (b *BoundedLoads) Acquire(key string) int {
	k := b.ring.search(hashKey(key))
	chosen := b.acquire(k)
	if owner := int(b.ring.owners[k]); chosen != owner && b.onOverflow != nil {
		b.onOverflow(key, owner, chosen)
	}
	return chosen
}

// acquire places one unit of load on the first shard with room at or
// after ring point k.
func (b *BoundedLoads) acquire(k int) int {
	r := b.ring
	first := k
	b.mu.Lock()
	defer b.mu.Unlock()
	next := float64(b.total + 1)
	for step := 0; step < len(r.owners); step++ {
		o := r.owners[k]
		capacity := math.Ceil(b.c * next * r.set.weights[o] / r.set.total)
		if float64(b.load[o]) < capacity {
			b.load[o]++
			b.total++
			if step > 0 {
				b.overflowed++
			}
			return int(o)
		}
		if k++; k == len(r.owners) {
			k = 0
		}
	}
	// Unreachable: the capacities sum to ≥ c·(total+1) > total. Placing on
	// the owner keeps the contract (never fail) if floating point ever
	// disagreed.
	o := r.owners[first]
	b.load[o]++
	b.total++
	return int(o)
}

// Release ends one unit of load on shard, an index returned by
// [BoundedLoads.Acquire]. Releasing a shard with no load is an error
// wrapping [ErrNotAcquired].
func (b *BoundedLoads) Release(shard int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if shard < 0 || shard >= len(b.load) || b.load[shard] == 0 {
		return fmt.Errorf("%w: shard %d", ErrNotAcquired, shard)
	}
	b.load[shard]--
	b.total--
	return nil
}

// Nodes returns a copy of the shard set.
func (b *BoundedLoads) Nodes() []Node { return b.ring.Nodes() }

// BoundedLoadsStats is a snapshot of a [BoundedLoads].
type BoundedLoadsStats struct {
	// Load is the load in flight per shard, indexed like Nodes.
	Load []int64
	// Total is the sum of Load.
	Total int64
	// Overflowed counts acquisitions that did not land on the key's ring
	// owner because it was full.
	Overflowed uint64
}

// Stats returns the current loads.
func (b *BoundedLoads) Stats() BoundedLoadsStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BoundedLoadsStats{Load: slices.Clone(b.load), Total: b.total, Overflowed: b.overflowed}
}

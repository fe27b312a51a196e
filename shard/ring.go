package shard

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// DefaultVirtualNodes is the number of ring points per unit of weight when
// [RingOptions.VirtualNodes] is zero: 160, the figure libketama uses. More
// points per shard even out the load at the cost of memory (16 bytes a
// point); the shard-balance lab experiment measures the busiest shard
// against the number of points (go run ./examples/tradeoffs -only
// shard-balance).
const DefaultVirtualNodes = 160

// maxRingPoints bounds the memory of one ring (16 bytes a point).
const maxRingPoints = 1 << 24

// RingOptions configure [NewRing]. The zero value is ready to use.
type RingOptions struct {
	// VirtualNodes is the number of points each unit of weight puts on the
	// ring: a shard of weight w gets round(VirtualNodes·w) points, and at
	// least one. Zero means [DefaultVirtualNodes]; negative is an error.
	VirtualNodes int
}

// Ring is a consistent-hash ring with virtual nodes and weights (Karger et
// al. 1997, as in Dynamo, Cassandra and groupcache): every shard hashes to
// many points on a 64-bit circle, and a key belongs to the first point at or
// after its own hash.
//
// Pros: adding or removing a shard moves only the keys of the arcs it takes
// or gives up, about 1/n of them (the guide's "difficult to add/remove
// shards" does not hold for it); weights are a point count; any shard may
// leave, not only the last. Cons: memory and an O(log points) binary search
// per lookup; balance depends on the number of virtual nodes (the busiest
// shard's excess over the mean shrinks as 1/√points per shard, as the
// shard-balance lab experiment shows). Use it for caches and key-value
// stores whose membership changes at any position.
//
// Unlike some well-known implementations, the ring does not depend on the
// order shards are given in: points are sorted by hash and then by shard
// name, so two shards hashing to one point resolve the same way every time;
// and a shard with a small weight still gets at least one point.
//
// A Ring is immutable and safe for concurrent use.
type Ring struct {
	set    *nodeSet
	hashes []uint64 // sorted point hashes, one per distinct hash
	owners []int32  // owners[i] is the input index of the shard at hashes[i]
}

// NewRing builds a ring over nodes. It returns an error wrapping
// [ErrInvalidConfig] (and [ErrNoShards], [ErrDuplicateShard] or
// [ErrInvalidWeight]) for a bad shard set or option.
func NewRing(nodes []Node, opts RingOptions) (*Ring, error) {
	set, err := newNodeSet(nodes)
	if err != nil {
		return nil, err
	}
	vn := opts.VirtualNodes
	if vn < 0 {
		return nil, fmt.Errorf("%w: RingOptions.VirtualNodes is %d (want ≥ 0; 0 means %d)", ErrInvalidConfig, vn, DefaultVirtualNodes)
	}
	if vn == 0 {
		vn = DefaultVirtualNodes
	}
	counts := make([]int, len(nodes))
	total := 0
	for i, w := range set.weights {
		c := math.Round(float64(vn) * w)
		if c > maxRingPoints {
			return nil, fmt.Errorf("%w: shard %q with weight %v needs %v ring points (at most %d in all)", ErrInvalidWeight, nodes[i].Name, nodes[i].Weight, c, maxRingPoints)
		}
		counts[i] = max(1, int(c))
		total += counts[i]
		if total > maxRingPoints {
			return nil, fmt.Errorf("%w: the ring needs more than %d points (VirtualNodes %d, total weight %v)", ErrInvalidConfig, maxRingPoints, vn, set.total)
		}
	}
	points := make([]ringPoint, 0, total)
	for i, n := range nodes {
		base := hashKey(n.Name)
		for j := range counts[i] {
			points = append(points, ringPoint{mix64(base + uint64(j+1)*golden), int32(i)})
		}
	}
	return newRingFromPoints(set, points), nil
}

// ringPoint is one virtual node: a position and the input index of its
// shard.
type ringPoint struct {
	hash  uint64
	owner int32
}

// newRingFromPoints sorts points by hash and resolves collisions by shard
// name (the smaller name keeps the point), so the ring does not depend on
// the order the shards were given in.
func newRingFromPoints(set *nodeSet, points []ringPoint) *Ring {
	slices.SortFunc(points, func(a, b ringPoint) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return strings.Compare(set.nodes[a.owner].Name, set.nodes[b.owner].Name)
	})
	r := &Ring{set: set, hashes: make([]uint64, 0, len(points)), owners: make([]int32, 0, len(points))}
	for k, p := range points {
		if k > 0 && p.hash == points[k-1].hash {
			continue // a collision: the smaller name already has the point
		}
		r.hashes = append(r.hashes, p.hash)
		r.owners = append(r.owners, p.owner)
	}
	return r
}

// AppendN appends to dst the indexes of up to n distinct shards in ring
// order from key — the owner first, then the next shards clockwise — and
// returns the extended slice: replica placement, or the fallback order of
// a bounded-load balancer that skips full shards. It allocates only when
// dst lacks capacity, and costs O(n²) beyond the search, so it suits small
// n.
func (r *Ring) AppendN(dst []int, key string, n int) []int {
	n = min(n, len(r.set.nodes))
	start := len(dst)
	k := r.search(hashKey(key))
	for visited := 0; len(dst)-start < n && visited < len(r.owners); visited++ {
		o := int(r.owners[k])
		if !slices.Contains(dst[start:], o) {
			dst = append(dst, o)
		}
		if k++; k == len(r.owners) {
			k = 0
		}
	}
	return dst
}

// Locate returns the index in the nodes given to [NewRing] of the shard
// that owns key. It does not allocate.
func (r *Ring) Locate(key string) int {
	return int(r.owners[r.search(hashKey(key))])
}

// search returns the index of the first point at or after h, wrapping to 0.
func (r *Ring) search(h uint64) int {
	lo, hi := 0, len(r.hashes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.hashes[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(r.hashes) {
		return 0
	}
	return lo
}

// Nodes returns a copy of the shard set in the order given to [NewRing].
func (r *Ring) Nodes() []Node { return slices.Clone(r.set.nodes) }

// Points returns the number of points on the ring.
func (r *Ring) Points() int { return len(r.hashes) }

package shard

import "slices"

// Jump is jump consistent hashing (Lamping and Veach, "A Fast, Minimal
// Memory, Consistent Hash Algorithm", 2014): a few lines of arithmetic that
// map a 64-bit key hash to a bucket in [0, n) such that growing n to n+1
// moves exactly the expected 1/(n+1) of keys, all to the new bucket.
//
// Pros: no memory, O(ln n) time, optimal movement and near perfect balance.
// Cons: shards are numbered, not named, so only the last shard can be
// removed without remapping (removing shard k from the middle moves far more
// than 1/n); no weights. Use it when shards are only ever appended: storage
// partitions that are split or replicated but never retired, or as the
// key → logical-shard step in front of a [Directory] that maps logical
// shards to servers (then a "removed" server's logical shards are simply
// pointed elsewhere).
//
// To grow, pass the old slice with the new shard appended; to shrink, drop
// only the last shard. A Jump is immutable and safe for concurrent use.
type Jump struct {
	set *nodeSet
	n   int64
}

// NewJump returns jump placement over nodes, numbered by position. Every
// weight must be 0 or 1 ([ErrInvalidWeight] otherwise).
func NewJump(nodes []Node) (*Jump, error) {
	set, err := newNodeSet(nodes)
	if err != nil {
		return nil, err
	}
	if err := set.requireUnweighted("jump"); err != nil {
		return nil, err
	}
	return &Jump{set: set, n: int64(len(nodes))}, nil
}

// Locate returns the bucket of key, an index into the nodes given to
// [NewJump]. It does not allocate.
func (j *Jump) Locate(key string) int { return int(JumpHash(hashKey(key), j.n)) }

// Nodes returns a copy of the shard set in the order given to [NewJump].
func (j *Jump) Nodes() []Node { return slices.Clone(j.set.nodes) }

// JumpHash is the paper's function: the bucket in [0, buckets) of a 64-bit
// key. It returns -1 when buckets < 1.
func JumpHash(key uint64, buckets int64) int64 {
	if buckets < 1 {
		return -1
	}
	var b, j int64 = -1, 0
	for j < buckets {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return b
}

package shard

import "slices"

// Jump is jump consistent hashing (Lamping and Veach, "A Fast, Minimal
// Memory, Consistent Hash Algorithm", 2014): a few lines of arithmetic that
// map a 64-bit key hash to a bucket in [0, n) such that growing n to n+1
// moves exactly the expected 1/(n+1) of keys, all to the new bucket.
//
// Pros: no memory, optimal movement and near perfect balance. Cons: shards
// are numbered, not named, so only the last shard can be removed without
// remapping (removing shard k from the middle moves far more than 1/n); no
// weights; a lookup is a chain of about ln(n)+1 dependent steps, each a
// floating-point division and two conversions, so it slows with the shard
// count where [Maglev] and [Bounded] stay one array read
// (BenchmarkLookup measures both beside the reference loop of
// github.com/dgryski/go-jump). Use it when shards are only ever appended:
// storage partitions that are split or replicated but never retired, or as
// the key → logical-shard step in front of a [Directory] that maps logical
// shards to servers (then a "removed" server's logical shards are simply
// pointed elsewhere).
//
// To grow, pass the old slice with the new shard appended; to shrink, drop
// only the last shard. A Jump is immutable and safe for concurrent use.
type Jump struct {
	set *nodeSet
	n   int64
	nf  float64 // float64(n), the loop's exit bound
}

// NewJump returns jump placement over nodes, numbered by position. Jump
// cannot honour weights: every weight must be 1 ([ErrInvalidWeight]
// otherwise).
func NewJump(nodes []Node) (*Jump, error) {
	set, err := newNodeSet(nodes)
	if err != nil {
		return nil, err
	}
	if err := set.requireUnweighted("jump", "every bucket takes 1/n of the keys"); err != nil {
		return nil, err
	}
	return &Jump{set: set, n: int64(len(nodes)), nf: float64(len(nodes))}, nil
}

// Locate returns the bucket of key, an index into the nodes given to
// [NewJump]: JumpHash(xxhash(key), n). It does not allocate.
func (j *Jump) Locate(key string) int { return int(jump(hashKey(key), j.nf)) }

// Nodes returns a copy of the shard set in the order given to [NewJump].
func (j *Jump) Nodes() []Node { return slices.Clone(j.set.nodes) }

// JumpHash is the paper's function: the bucket in [0, buckets) of a 64-bit
// key, bit for bit the buckets of the paper's reference code wherever that
// code is well defined (up to 2^31 buckets, far beyond any shard count).
// It returns -1 when buckets < 1.
func JumpHash(key uint64, buckets int64) int64 {
	if buckets < 1 {
		return -1
	}
	if buckets > 1<<53 {
		return jumpWide(key, buckets)
	}
	return jump(key, float64(buckets))
}

// jumpWide is the loop for bucket counts that a float64 no longer holds
// exactly. A candidate of 2^63 or more ends the walk: the reference code's
// conversion of such a value to int64 is undefined (in Go it yields a
// negative number, and the reference loop may never end).
func jumpWide(key uint64, buckets int64) int64 {
	var b int64
	for {
		key = key*2862933555777941757 + 1
		p := float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1))
		if p >= 1<<63 || int64(p) >= buckets {
			return b
		}
		b = int64(p)
	}
}

// jump is the paper's loop with the exit test moved before the
// float-to-integer conversion: for a candidate p ≥ 0 and an integer bound
// n, int64(p) < n exactly when p < n, so the result is the same, and the
// exit branch, which mispredicts about once per lookup, resolves a
// conversion earlier. n must be an integer in [1, 2^53].
func jump(key uint64, n float64) int64 {
	var b int64
	for {
		key = key*2862933555777941757 + 1
		p := float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1))
		if p >= n {
			return b
		}
		b = int64(p)
	}
}

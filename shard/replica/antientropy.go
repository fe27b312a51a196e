package replica

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/bits"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/sysdesign-go/sysdesign/shard"
)

// Merkle tree shape: a node picks the depth from its own key count (about
// leafKeys keys a leaf), within [minDepth, maxDepth], and descends stride
// levels per round trip.
const (
	minDepth = 1
	maxDepth = 16
	leafKeys = 4
	stride   = 4
)

// AntiEntropyStats says what one [Node.AntiEntropy] exchange cost and
// repaired. Bytes counts the payload both ways: 8 bytes per hash or digest,
// 4 per tree index, and the length of each key and of each value sent.
type AntiEntropyStats struct {
	RoundTrips int // requests sent to the peer
	Bytes      int // payload bytes exchanged
	Keys       int // keys found different (missing on one side, or not equal)
	Pulled     int // records merged here from the peer
	Pushed     int // records sent to the peer
}

// AntiEntropy compares this node's keys with peer's — only those the two
// replicate together — through Merkle trees (as Dynamo and Cassandra's
// repair do), and repairs both sides: each differing record is merged on
// both nodes. Only the branches of the tree that differ are exchanged, so
// the cost grows with the number of differing keys, not with the number of
// keys. The owner runs it periodically or on demand; it starts no
// goroutine.
func (n *Node) AntiEntropy(ctx context.Context, peer string) (AntiEntropyStats, error) {
	var st AntiEntropyStats
	if n.cfg.Transport == nil {
		return st, fmt.Errorf("%w: node %q has no transport", ErrInvalidArgument, n.cfg.Name)
	}
	if peer == n.cfg.Name || n.index(peer) < 0 {
		return st, fmt.Errorf("%w: anti-entropy peer %q (want another node of the placement)", ErrInvalidArgument, peer)
	}
	leaves, count, err := n.leaves(peer)
	if err != nil {
		return st, err
	}
	depth := min(max(bits.Len(uint(count/leafKeys)), minDepth), maxDepth)
	own := levels(leaves, depth)
	call := func(req *Request) (*Response, error) {
		st.RoundTrips++
		st.Bytes += 4 * len(req.Indices)
		return n.cfg.Transport.Call(ctx, peer, req)
	}

	// Descend from the root through the branches whose hashes differ.
	differing := []int{0}
	for prev, level := 0, 0; ; prev, level = level, min(level+stride, depth) {
		var idx []int
		if level == 0 {
			idx = []int{0}
		} else {
			for _, i := range differing {
				for j := i << (level - prev); j < (i+1)<<(level-prev); j++ {
					idx = append(idx, j)
				}
			}
		}
		resp, err := call(&Request{Op: OpTree, Peer: n.cfg.Name, Level: level, Indices: idx, Depth: depth})
		if err != nil {
			return st, err
		}
		if len(resp.Hashes) != len(idx) {
			return st, fmt.Errorf("%w: %d tree hashes for %d indices from %s", ErrBadReply, len(resp.Hashes), len(idx), peer)
		}
		st.Bytes += 8 * len(resp.Hashes)
		differing = differing[:0]
		for k, i := range idx {
			if own[level][i] != resp.Hashes[k] {
				differing = append(differing, i)
			}
		}
		if len(differing) == 0 {
			return st, nil
		}
		if level == depth {
			break
		}
	}

	// Compare the keys of the differing leaves.
	resp, err := call(&Request{Op: OpBucket, Peer: n.cfg.Name, Indices: differing, Depth: depth})
	if err != nil {
		return st, err
	}
	theirs := make(map[string]uint64, len(resp.Keys))
	for _, kd := range resp.Keys {
		theirs[kd.Key] = kd.Digest
		st.Bytes += len(kd.Key) + 8
	}
	mine, err := n.bucketKeys(peer, depth, differing)
	if err != nil {
		return st, err
	}
	ours := make(map[string]uint64, len(mine))
	for _, kd := range mine {
		ours[kd.Key] = kd.Digest
	}
	keys := slices.Sorted(maps.Keys(theirs))
	for k := range ours {
		if _, ok := theirs[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, key := range keys {
		d, inTheirs := theirs[key]
		if o, inOurs := ours[key]; inOurs && inTheirs && o == d {
			continue
		}
		st.Keys++
		var merged Record
		if inTheirs {
			resp, err := call(&Request{Op: OpGet, Key: key})
			if err != nil {
				return st, err
			}
			if resp.Key != key || resp.Record == nil {
				return st, fmt.Errorf("%w: anti-entropy read of %q from %s answered for %q", ErrBadReply, key, peer, resp.Key)
			}
			if err := resp.Record.validate(n.cfg.MaxValueSize); err != nil {
				return st, fmt.Errorf("%w (from %s)", err, peer)
			}
			st.Bytes += len(key) + recordBytes(*resp.Record)
			if merged, err = n.replicate(key, "", *resp.Record); err != nil {
				return st, err
			}
			st.Pulled++
			if merged.equal(*resp.Record) {
				continue
			}
		} else {
			r, _, err := n.cfg.Store.Get(key)
			if err != nil {
				return st, err
			}
			merged = r
		}
		st.Bytes += len(key) + recordBytes(merged)
		if _, err := call(&Request{Op: OpReplicate, Key: key, Record: &merged}); err != nil {
			return st, err
		}
		st.Pushed++
	}
	return st, nil
}

// recordBytes is the payload a record counts for in [AntiEntropyStats]:
// its values, and 8 bytes per dot and clock entry.
func recordBytes(r Record) int {
	b := 8 * len(r.Clock)
	for _, s := range r.Siblings {
		b += len(s.Value) + 8 + 8*len(s.Past)
	}
	return b
}

// index returns the placement index of the node named name, or -1.
func (n *Node) index(name string) int {
	return slices.IndexFunc(n.cfg.Placement.Nodes(), func(x shard.Node) bool { return x.Name == name })
}

// rangeShared calls fn for every record of a key whose first N nodes
// include both this node and peer.
func (n *Node) rangeShared(peer string, fn func(string, Record)) error {
	me, them := n.index(n.cfg.Name), n.index(peer)
	if them < 0 {
		return fmt.Errorf("%w: peer %q is not in the placement", ErrInvalidArgument, peer)
	}
	buf := make([]int, 0, n.cfg.N)
	return n.cfg.Store.Range(func(key string, r Record) bool {
		buf = n.cfg.Placement.AppendN(buf[:0], key, n.cfg.N)
		if slices.Contains(buf, me) && slices.Contains(buf, them) {
			fn(key, r)
		}
		return true
	})
}

// leaf returns the leaf of key in a tree of the given depth.
func leaf(key string, depth int) int { return int(xxhash.Sum64String(key) >> (64 - depth)) }

// digest hashes the versions a record holds (its clock and its siblings'
// dots): two replicas that merged the same writes have equal digests.
func digest(r Record) uint64 {
	h := xxhash.New()
	var b [8]byte
	var buf [8]string
	names := buf[:0]
	for node := range r.Clock {
		names = append(names, node)
	}
	slices.Sort(names)
	for _, node := range names {
		_, _ = h.WriteString(node)
		_, _ = h.Write(binary.LittleEndian.AppendUint64(b[:0], r.Clock[node]))
	}
	_, _ = h.Write([]byte{0})
	for _, s := range r.Siblings {
		_, _ = h.WriteString(s.Dot.Node)
		_, _ = h.Write(binary.LittleEndian.AppendUint64(b[:0], s.Dot.Counter))
	}
	return h.Sum64()
}

// leaves returns the leaves of the deepest Merkle tree of the keys this
// node shares with peer, and how many keys it holds. A leaf is the XOR of
// its keys' hashes, so the order keys are visited in does not matter and
// the leaves of a shallower tree are the XOR of these in pairs.
func (n *Node) leaves(peer string) ([]uint64, int, error) {
	leaves := make([]uint64, 1<<maxDepth)
	count := 0
	var b [16]byte
	err := n.rangeShared(peer, func(key string, r Record) {
		h := xxhash.Sum64String(key)
		binary.LittleEndian.PutUint64(b[:], h)
		binary.LittleEndian.PutUint64(b[8:], digest(r))
		leaves[h>>(64-maxDepth)] ^= xxhash.Sum64(b[:])
		count++
	})
	return leaves, count, err
}

// levels folds the deepest leaves into a tree of the given depth and
// returns it level by level from the root; an inner node hashes its two
// children.
func levels(leaves []uint64, depth int) [][]uint64 {
	out := make([][]uint64, depth+1)
	cur := leaves
	for len(cur) > 1<<depth {
		next := make([]uint64, len(cur)/2)
		for i := range next {
			next[i] = cur[2*i] ^ cur[2*i+1]
		}
		cur = next
	}
	out[depth] = cur
	var b [16]byte
	for l := depth - 1; l >= 0; l-- {
		out[l] = make([]uint64, 1<<l)
		for i := range out[l] {
			binary.LittleEndian.PutUint64(b[:], out[l+1][2*i])
			binary.LittleEndian.PutUint64(b[8:], out[l+1][2*i+1])
			out[l][i] = xxhash.Sum64(b[:])
		}
	}
	return out
}

// treeHashes serves OpTree: the hashes at level of the tree of the given
// depth over the keys shared with peer.
func (n *Node) treeHashes(peer string, level int, indices []int, depth int) ([]uint64, error) {
	if depth < minDepth || depth > maxDepth {
		return nil, fmt.Errorf("%w: Merkle tree depth %d (want %d–%d)", ErrInvalidArgument, depth, minDepth, maxDepth)
	}
	if level < 0 || level > depth {
		return nil, fmt.Errorf("%w: Merkle tree level %d of depth %d", ErrInvalidArgument, level, depth)
	}
	leaves, _, err := n.leaves(peer)
	if err != nil {
		return nil, err
	}
	t := levels(leaves, depth)
	out := make([]uint64, len(indices))
	for k, i := range indices {
		if i < 0 || i >= len(t[level]) {
			return nil, fmt.Errorf("%w: Merkle tree index %d at level %d", ErrInvalidArgument, i, level)
		}
		out[k] = t[level][i]
	}
	return out, nil
}

// bucketKeys serves OpBucket: the keys and digests in the given leaves.
func (n *Node) bucketKeys(peer string, depth int, leaves []int) ([]KeyDigest, error) {
	if depth < minDepth || depth > maxDepth {
		return nil, fmt.Errorf("%w: Merkle tree depth %d (want %d–%d)", ErrInvalidArgument, depth, minDepth, maxDepth)
	}
	want := make(map[int]bool, len(leaves))
	for _, l := range leaves {
		want[l] = true
	}
	var out []KeyDigest
	err := n.rangeShared(peer, func(key string, r Record) {
		if want[leaf(key, depth)] {
			out = append(out, KeyDigest{Key: key, Digest: digest(r)})
		}
	})
	return out, err
}

package shard

import (
	"fmt"
	"slices"
)

// DefaultMaglevTableSize is the lookup-table size when
// [MaglevOptions.TableSize] is zero and there are at most 655 shards; above
// that the default is the smallest prime ≥ 100 × the number of shards. The
// Maglev paper uses 65,537 and recommends a size at least 100× the number
// of backends, which keeps every backend within about 1% of its share.
const DefaultMaglevTableSize = 65537

// maxMaglevTableSize bounds the memory of one table (4 bytes an entry).
const maxMaglevTableSize = 1 << 26

// MaglevOptions configure [NewMaglev]. The zero value is ready to use.
type MaglevOptions struct {
	// TableSize is the number of lookup-table entries. It must be a prime
	// at least as large as the number of shards (and at most 2^26). Zero
	// means [DefaultMaglevTableSize], or the smallest prime ≥ 100 × shards
	// when that is larger.
	TableSize int
}

// Maglev is Google's Maglev consistent hashing (Eisenbud et al., NSDI
// 2016): each shard walks its own permutation of a prime-sized table and
// the shards take turns claiming entries, so every shard ends with an almost
// equal share (weighted shards take more turns); a key is one table lookup.
//
// Pros: the fastest lookup (a hash and an array read, no search), near
// perfect balance at any shard count. Cons: building the table costs
// O(M log M) and M·4 bytes; on a membership change more keys move than the
// ideal 1/(n+1), because claims shift, and more so as shards grow in
// number (the shard-movement lab experiment measures how many). Use it for
// load balancers and routers that look up on every packet or request and rebuild rarely.
//
// Shards claim entries in name order, so the table does not depend on the
// order the shards are given in. A Maglev is immutable and safe for
// concurrent use.
type Maglev struct {
	set   *nodeSet
	table []int32 // input index per entry
}

// NewMaglev builds a Maglev table over nodes. Bad shard sets and options
// return errors wrapping [ErrInvalidConfig].
func NewMaglev(nodes []Node, opts MaglevOptions) (*Maglev, error) {
	set, err := newNodeSet(nodes)
	if err != nil {
		return nil, err
	}
	m := opts.TableSize
	switch {
	case m == 0:
		m = DefaultMaglevTableSize
		if 100*len(nodes) > m {
			m = nextPrime(100 * len(nodes))
		}
		if m > maxMaglevTableSize {
			return nil, fmt.Errorf("%w: %d shards need a Maglev table of %d entries (at most %d)", ErrInvalidConfig, len(nodes), m, maxMaglevTableSize)
		}
	case m < len(nodes) || m > maxMaglevTableSize || !isPrime(m):
		return nil, fmt.Errorf("%w: MaglevOptions.TableSize is %d (want a prime between the shard count %d and %d; 0 means a default)", ErrInvalidConfig, m, len(nodes), maxMaglevTableSize)
	}
	return &Maglev{set: set, table: buildMaglev(set, m)}, nil
}

// buildMaglev fills a table of size m (prime, ≥ shards) by the paper's
// population algorithm. A shard of weight w claims an entry in pass p only
// while its claims are below (p+1)·w/wmax, so shares follow weights and
// every shard claims at least once.
func buildMaglev(set *nodeSet, m int) []int32 {
	n := len(set.nodes)
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	claimed := make([]float64, n)
	wmax := slices.Max(set.weights)
	for i, node := range set.nodes {
		h := hashKey(node.Name)
		offset[i] = h % uint64(m)
		skip[i] = mix64(h^golden)%uint64(m-1) + 1
	}
	table := make([]int32, m)
	for i := range table {
		table[i] = -1
	}
	filled := 0
	for pass := 0; filled < m; pass++ {
		for _, i := range set.byName {
			if claimed[i] >= float64(pass+1)*set.weights[i]/wmax {
				continue
			}
			c := (offset[i] + next[i]*skip[i]) % uint64(m)
			for table[c] >= 0 {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % uint64(m)
			}
			table[c] = int32(i)
			next[i]++
			claimed[i]++
			if filled++; filled == m {
				break
			}
		}
	}
	return table
}

// Locate returns the index in the nodes given to [NewMaglev] of the shard
// that owns key. It does not allocate.
func (g *Maglev) Locate(key string) int {
	return int(g.table[fastRange(hashKey(key), uint64(len(g.table)))])
}

// Nodes returns a copy of the shard set in the order given to [NewMaglev].
func (g *Maglev) Nodes() []Node { return slices.Clone(g.set.nodes) }

// TableSize returns the number of entries in the lookup table.
func (g *Maglev) TableSize() int { return len(g.table) }

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

func nextPrime(n int) int {
	for !isPrime(n) {
		n++
	}
	return n
}

package lb

import "github.com/sysdesign-go/sysdesign/shard"

// Maglev is Google's Maglev consistent hashing ([shard.Maglev]; Envoy's
// MAGLEV): each backend fills its share of a prime-sized lookup table, and
// [Request.Key] is one table lookup. Requests without a key go to a random
// backend.
//
// Pros: the fastest affinity lookup (a hash and an array read) and an
// almost perfectly even, weighted share of keys; a backend leaving moves
// little more than its own keys. Cons: rebuilding the table on a rotation
// change costs O(table size); keys still carry their load with them. Use
// it for high-rate routers and load balancers that need affinity.
//
// Maglev picks lock-free.
type Maglev struct {
	// TableSize is the lookup table's size: a prime at least the number
	// of backends. Zero means the shard package's default; negative is an
	// error.
	TableSize int
}

func (a Maglev) setup() (algoSetup, error) {
	if a.TableSize < 0 {
		return algoSetup{}, configErr(nil, "maglev table size %d (want ≥ 0)", a.TableSize)
	}
	return hashSetup(func(nodes []shard.Node) (keyLocator, error) {
		return shard.NewMaglev(nodes, shard.MaglevOptions{TableSize: a.TableSize})
	}), nil
}

package lb

import (
	"github.com/sysdesign-go/sysdesign/shard"
)

// keyLocator maps a key to the index of one of the backends it was built
// over; the shard package's Ring and Maglev implement it.
type keyLocator interface {
	Locate(key string) int
}

// hashAlgo builds a keyLocator over the backends in rotation, named by
// address and weighted, so that a backend leaving rotation moves only its
// own keys.
type hashAlgo struct {
	newLocator func(nodes []shard.Node, s *settings) (keyLocator, error)
}

func (hashAlgo) affinity() bool { return true }

func (a hashAlgo) build(active []*endpoint, c *core) (picker, error) {
	nodes := make([]shard.Node, len(active))
	for i, e := range active {
		nodes[i] = shard.Node{Name: e.b.Addr, Weight: e.weightNow()}
	}
	loc, err := a.newLocator(nodes, &c.set)
	if err != nil {
		return nil, configErr(nil, "cannot build the hash table: %w", err)
	}
	return &hashPicker{eps: active, loc: loc, rng: &c.rng}, nil
}

type hashPicker struct {
	eps []*endpoint
	loc keyLocator
	rng *rng
}

func (p *hashPicker) pick(req Request, _ int64) *endpoint {
	if req.Key == "" {
		return p.eps[p.rng.intn(len(p.eps))]
	}
	return p.eps[p.loc.Locate(req.Key)]
}

// RingHash is consistent hashing on a ring with virtual nodes ([shard.Ring],
// Karger et al.; Envoy's RING_HASH): [Request.Key] goes to the first
// backend point clockwise from its hash. Requests without a key go to a
// random backend.
//
// Pros (the guide, IP Hash → session affinity): the same key reaches the
// same backend, and when a backend leaves rotation (removed, unhealthy,
// ejected) only its own keys move, about 1/n of them, where [IPHash]'s
// modulo moves almost all; weights are honoured by point count. Cons: the
// load follows the keys — a hot key or a clustered key space overloads its
// backend — and a lookup is a binary search (O(log points)). Use it for
// stateful services and per-backend caches whose membership changes.
//
// RingHash is lock-free and safe for concurrent use; a rotation change
// rebuilds the ring ([Options.VirtualNodes] points per unit of weight).
type RingHash struct{ core }

var _ Balancer = (*RingHash)(nil)

// NewRingHash returns a ring-hash balancer.
func NewRingHash(backends []Backend, opts Options) (*RingHash, error) {
	b := &RingHash{}
	algo := hashAlgo{newLocator: func(nodes []shard.Node, s *settings) (keyLocator, error) {
		return shard.NewRing(nodes, shard.RingOptions{VirtualNodes: s.VirtualNodes})
	}}
	if err := b.init(backends, opts, algo, 0); err != nil {
		return nil, err
	}
	return b, nil
}

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
// Maglev is lock-free and safe for concurrent use.
type Maglev struct{ core }

var _ Balancer = (*Maglev)(nil)

// NewMaglev returns a Maglev balancer; [Options.MaglevTableSize] sets the
// table size.
func NewMaglev(backends []Backend, opts Options) (*Maglev, error) {
	b := &Maglev{}
	algo := hashAlgo{newLocator: func(nodes []shard.Node, s *settings) (keyLocator, error) {
		return shard.NewMaglev(nodes, shard.MaglevOptions{TableSize: s.MaglevTableSize})
	}}
	if err := b.init(backends, opts, algo, 0); err != nil {
		return nil, err
	}
	return b, nil
}

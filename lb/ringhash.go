package lb

import "github.com/sysdesign-go/sysdesign/shard"

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
// RingHash picks lock-free; a rotation change rebuilds the ring.
type RingHash struct {
	// VirtualNodes is the number of ring points per unit of weight. Zero
	// means the shard package's default; negative is an error.
	VirtualNodes int
}

func (a RingHash) setup() (algoSetup, error) {
	if a.VirtualNodes < 0 {
		return algoSetup{}, configErr(nil, "ring hash virtual nodes %d (want ≥ 0)", a.VirtualNodes)
	}
	return hashSetup(func(nodes []shard.Node) (keyLocator, error) {
		return shard.NewRing(nodes, shard.RingOptions{VirtualNodes: a.VirtualNodes})
	}), nil
}

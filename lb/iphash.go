package lb

import (
	"net/netip"

	"github.com/cespare/xxhash/v2"
)

// IPHash maps each client to a backend by hashing its IP address modulo the
// number of backends in rotation, as nginx's ip_hash does: an IPv4 client is
// hashed on its first three octets (its /24 network), an IPv6 client on its
// whole address, and a key that is not an IP address (with or without a
// port) on the whole key. The key is [Request.Key]; requests without one
// go to a random backend.
//
// Pros (the guide, IP Hash): session affinity, useful for stateful
// applications and per-backend caches, with no shared session store. Cons:
// uneven distribution if IPs are clustered (a few large corporate networks
// or a carrier NAT map whole populations to one /24, hence one backend),
// and because it is a modulo, a backend leaving or returning remaps almost
// every client — use [RingHash] or [Maglev] where affinity must survive
// membership changes. Weights are ignored.
//
// IPHash picks lock-free.
type IPHash struct{}

func (IPHash) setup() (algoSetup, error) {
	return algoSetup{affinity: true, build: func(active []*endpoint, b *Balancer) (picker, error) {
		return &ipHashPicker{eps: active, rng: &b.rng}, nil
	}}, nil
}

type ipHashPicker struct {
	eps []*endpoint
	rng *rng
}

func (p *ipHashPicker) pick(req Request, _ int64) *endpoint {
	if req.Key == "" {
		return p.eps[p.rng.intn(len(p.eps))]
	}
	return p.eps[ipHashKey(req.Key)%uint64(len(p.eps))]
}

// ipHashKey hashes the /24 of an IPv4 address, the whole of an IPv6
// address, or the whole key if it is not an address.
func ipHashKey(key string) uint64 {
	addr, err := netip.ParseAddr(key)
	if err != nil {
		ap, err := netip.ParseAddrPort(key)
		if err != nil {
			return xxhash.Sum64String(key)
		}
		addr = ap.Addr()
	}
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		return xxhash.Sum64(b[:3])
	}
	b := addr.As16()
	return xxhash.Sum64(b[:])
}
